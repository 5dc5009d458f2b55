"""Sending one request with httpx, and turning what happened into the stored response."""

from __future__ import annotations

import base64
import codecs
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx

from htq.models import (
    ATTEMPT,
    REQUEST_ID,
    USER_AGENT,
    RequestSpec,
    Status,
    now_ms,
    response_resource,
)
from htq.outbound import Refused
from htq.signing import Signer
from htq.worker._backend import OutboundRefused
from htq.worker._body import Undecodable, read_body, read_raw
from htq.worker._transport import InterruptibleTransport

log = logging.getLogger("htq.worker")

DELETE_TIMEOUT = 5.0  # seconds the courtesy DELETE after a cancel may take, in all
DELETE_READ = 4096  # bytes of the DELETE's answer read (undecoded), to reuse the connection

# Media types (besides text/*) whose bodies are text; anything else declared is binary.
_TEXT_HINTS = (
    "json",
    "xml",
    "javascript",
    "ecmascript",
    "html",
    "form-urlencoded",
    "yaml",
    "csv",
    "graphql",
    "sql",
    "toml",
)
# What every request carries unless it says otherwise (httpx.Client's defaults, our agent).
_DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": USER_AGENT,
}
# What JSON escapes, as UTF-8 bytes: C0 controls (six-byte \u00XX escapes, but for these
# two-byte ones) and the two-byte \" and \\. UTF-8 holds them only as themselves.
_TWO_BYTE = b'"\\\b\t\n\f\r'
_NOT_ESCAPED = bytes(sorted(set(range(256)) - set(range(0x20)) - set(_TWO_BYTE)))
_SLICE = 1 << 16  # characters measured at a time (their UTF-8 is a temporary copy)
# Headers of the original request that would lie about the DELETE's (empty) body. POST /
# refuses them now; requests queued by htq 0.2 may still carry them.
_BODY_HEADERS = frozenset({"content-length", "transfer-encoding"})


@contextlib.contextmanager
def open_request(
    transport: httpx.BaseTransport,
    method: str,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    timeout: float,
) -> Iterator[httpx.Response]:
    """Send one request; the response's body is read in the block.

    On an InterruptibleTransport `timeout` is the deadline of the whole exchange (connect,
    send, headers and the body read in the block), not of each phase: a target that trickles
    a byte at a time holds the thread no longer.

    Straight to the transport, not through a `Client`: one thread sends requests of many
    callers, and a client's cookie jar would hand one caller's cookies to the next (it is also
    a quarter of a client's CPU per request). Redirects are not followed anyway.
    """
    # Bytes, so a Latin-1 value goes out as the one byte it is (httpx would encode str as ASCII).
    given = {name.lower() for name in headers}
    raw = [(k.encode(), v.encode()) for k, v in _DEFAULT_HEADERS.items() if k.lower() not in given]
    raw += [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()]
    request = httpx.Request(
        method,
        url,
        headers=raw,
        content=content,
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    # While sending, the whole exchange is already held to the request's deadline (begin).
    held = (
        transport.in_flight.within(timeout)
        if isinstance(transport, InterruptibleTransport) and not transport.in_flight.sending
        else contextlib.nullcontext()
    )
    with held:
        response = transport.handle_request(request)
        try:
            yield response
        finally:
            response.close()


def send(
    transport: httpx.BaseTransport,
    spec: RequestSpec,
    uuid: str,
    max_bytes: int,
    signer: Signer | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send `spec`: any HTTP response is a `success`, a failure an `error`, too late a `timeout`.

    The body is read as it streams and cut at `max_bytes` (decoded, see read_body). The
    overall deadline is kept by the network backend (see InFlight.enter).
    """
    started = time.monotonic()
    body = spec.body()
    headers = spec.send_headers()
    if extra:
        headers = {**{k: v for k, v in headers.items() if k.lower() not in _lower(extra)}, **extra}
    headers = Signer.sign(signer, uuid, headers, body)
    try:
        with open_request(
            transport, spec.method, spec.url, headers, body, spec.timeout
        ) as response:
            raw, truncated, encoded = read_body(response, max_bytes, headers)
    except httpx.TimeoutException:
        return outcome(uuid, Status.TIMEOUT, started, timeout_message(spec))
    except Exception as exc:  # a request that cannot be sent is its own `error`, not a crash
        return outcome(uuid, Status.ERROR, started, describe(exc))
    content_type = None if encoded else response.headers.get("Content-Type")
    data, encoding = encode_body(raw, content_type, truncated=truncated, binary=encoded)
    return response_resource(
        uuid,
        Status.SUCCESS,
        time_ms=now_ms(),
        elapsed_ms=(time.monotonic() - started) * 1000,
        code=response.status_code,
        reason=response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code),
        headers=response_headers(response),
        data=data,
        encoding=encoding,
        truncated=truncated,
    )


def send_delete(
    transport: httpx.BaseTransport,
    spec: RequestSpec,
    uuid: str,
    signer: Signer | None = None,
    attempt: int | None = None,
) -> None:
    """Tell the target a request was canceled: DELETE its URL with the request's headers, and
    which request and attempt it cancels (`Htq-Request-Id`, `Htq-Attempt`).

    DELETE_TIMEOUT bounds the whole exchange; at most DELETE_READ bytes of the answer are read.
    """
    ours = {REQUEST_ID: uuid}
    if attempt is not None:
        ours[ATTEMPT] = str(attempt)
    skip = _BODY_HEADERS | _lower(ours)
    headers = {k: v for k, v in spec.headers.items() if k.lower() not in skip} | ours
    headers = Signer.sign(signer, uuid, headers, None)
    try:
        with open_request(transport, "DELETE", spec.url, headers, None, DELETE_TIMEOUT) as response:
            read_raw(response, DELETE_READ)
            log.debug("[%s] DELETE sent to the target: %d", uuid, response.status_code)
    except httpx.TimeoutException:
        log.debug("[%s] DELETE to the target timed out after %g seconds", uuid, DELETE_TIMEOUT)
    except Exception as exc:  # a courtesy: its failure is logged, never raised
        log.debug("[%s] DELETE to the target failed: %s", uuid, describe(exc))


def outcome(uuid: str, status: Status, started: float, message: str) -> dict[str, Any]:
    """An `error` or `timeout` response resource."""
    elapsed = (time.monotonic() - started) * 1000
    return response_resource(uuid, status, time_ms=now_ms(), elapsed_ms=elapsed, message=message)


def timeout_message(spec: RequestSpec) -> str:
    unit = "second" if spec.timeout == 1 else "seconds"
    return f"No complete response within the request's timeout of {spec.timeout:g} {unit}."


def describe(exc: BaseException) -> str:
    """A one-line message for a person about why a request could not be sent."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, Undecodable):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "Timed out."  # the detail is the kernel's "[Errno 11] Resource temporarily..."
    if isinstance(exc, httpx.ConnectError) and refused_by_guard(exc):
        return f"Refused by htq's outbound guard: {detail}"
    if isinstance(exc, httpx.ConnectError):
        return f"Could not connect: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"Protocol error: {detail}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"Connection broken: {detail}"
    if isinstance(exc, httpx.ProxyError):
        return f"Proxy error: {detail}"
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL | ValueError):
        return f"Invalid request: {detail}"
    return f"{type(exc).__name__}: {detail}"


def _lower(headers: dict[str, str]) -> set[str]:
    return {name.lower() for name in headers}


def refused_by_guard(exc: BaseException) -> bool:
    """True if `exc` is a refusal by the outbound guard (final: trying again is refused again)."""
    return isinstance(exc.__cause__, Refused | OutboundRefused)


def encode_body(
    raw: bytes | bytearray, content_type: str | None, *, truncated: bool, binary: bool = False
) -> tuple[str, str | None]:
    """Text as is (decoded by its charset, UTF-8 by default); anything else (or `binary`)
    base64.

    A cut body may end inside a character: that partial character is dropped. Text that JSON
    would store more than twice as large (control characters become six-byte escapes: a
    10 MiB body of NULs would take 60 MiB) is stored as base64 too, so what is stored stays
    within twice the response cap.
    """
    if binary or _is_binary(content_type):
        return base64.b64encode(raw).decode("ascii"), "base64"
    charset = _charset(content_type) or "utf-8"
    try:
        text = _decoded(raw, charset, truncated)
    except (LookupError, ValueError, TypeError):  # unknown charset, or not in that charset
        text = None
    if not isinstance(text, str) or _escapes_to_more_than_double(text):
        return base64.b64encode(raw).decode("ascii"), "base64"
    return text, None


def _decoded(raw: bytes | bytearray, charset: str, truncated: bool) -> Any:
    """`raw` decoded (a str, or what a codec that is no charset returns); a cut body may end
    inside a character: that one is dropped.

    Never through a copy of `raw` first, where it can be helped: the incremental decoders of
    UTF-8 (16, 32) copy a bytearray they are given.
    """
    if not truncated:
        return raw.decode(charset)
    if codecs.lookup(charset).name == "utf-8":
        return codecs.utf_8_decode(raw, "strict", False)[0]
    return codecs.getincrementaldecoder(charset)().decode(raw, final=False)


def _escapes_to_more_than_double(text: str) -> bool:
    """True if `text`, stored as JSON (UTF-8), would take more than twice its UTF-8 size.

    Only control characters (other than the two-byte escapes) can do that. The escapes are
    counted, not written (that would take six times the body), in one pass over each slice.
    """
    size = six = two = 0
    for start in range(0, len(text), _SLICE):
        data = text[start : start + _SLICE].encode()
        escaped = data.translate(None, _NOT_ESCAPED)
        slice_six = len(escaped.translate(None, _TWO_BYTE))
        size, six, two = size + len(data), six + slice_six, two + len(escaped) - slice_six
    return size + 5 * six + two > 2 * size


def response_headers(response: httpx.Response) -> dict[str, str]:
    """Headers with the names' original case; repeated headers joined with ", "."""
    encoding = response.headers.encoding
    headers: dict[str, str] = {}
    names: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name, value = raw_name.decode(encoding), raw_value.decode(encoding)
        key = names.setdefault(name.lower(), name)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _is_binary(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if not mime or mime.startswith("text/") or "charset=" in params.lower():
        return False
    return not any(hint in mime for hint in _TEXT_HINTS)


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None

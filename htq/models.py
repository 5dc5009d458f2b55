"""The one vocabulary: statuses, request and response shapes, request validation (no I/O)."""

from __future__ import annotations

import enum
import json
import re
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from htq import __version__
from htq.delivery import DELIVERY_FIELDS, NO_DELIVERY, Delivery, validate_delivery, validate_due
from htq.errors import InvalidField, MalformedRequest
from htq.outbound import url_host


class Status(enum.StrEnum):
    """The life of a request, in the spec's words."""

    QUEUED = "queued"
    PENDING = "pending"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELED = "canceled"


#: Statuses after which a request is never sent again.
TERMINAL = frozenset({Status.SUCCESS, Status.ERROR, Status.TIMEOUT, Status.CANCELED})
#: Statuses that carry a stored response (or an error/timeout outcome).
ANSWERED = frozenset({Status.SUCCESS, Status.ERROR, Status.TIMEOUT})

#: What every request an htq worker sends carries, so that an htq server knows one when it
#: reaches its `POST /` (refused: a request that queues requests could loop): its User-Agent
#: (unless the description sets one) and, on every retried attempt and callback, headers whose
#: names begin with `Htq-`, whatever the description says.
USER_AGENT = f"htq/{__version__}"
MARK_PREFIX = "Htq-"
REQUEST_ID = "Htq-Request-Id"  # the request's uuid
ATTEMPT = "Htq-Attempt"  # the attempt's number, 1 for the first

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0  # the default of --max-timeout
MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024  # names and values together
MAX_ID_LENGTH = 256
MAX_URL_LENGTH = 8192
REQUEST_FIELDS = frozenset({"url", "method", "headers", "data", "timeout", "id", *DELIVERY_FIELDS})
#: Headers the worker sets itself from the body and the connection. A description that set
#: them could frame its body one way and send it another (a request-smuggling building block).
OWNED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# RFC 9110 token characters, for the method and header names (always `fullmatch`ed: `$` would
# let a trailing newline through).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # control characters (DEL too)
_CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A JSON escape of a UTF-16 surrogate: the only way a string that UTF-8 cannot encode (a lone
# surrogate) gets into a parsed body, since the raw bytes must be valid UTF-8.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every `time` field."""
    return int(time.time() * 1000)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def is_uuid(text: str) -> bool:
    """True for a canonical lower-case UUID, the only form htq hands out."""
    return _UUID.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A validated description of an HTTP request to send later."""

    url: str
    method: str
    headers: dict[str, str]
    data: Any
    timeout: float
    id: str | None = None
    delivery: Delivery = NO_DELIVERY  # retries, callbacks: none by default
    due: int | None = None  # epoch ms before which it is not sent (None: at once)

    def body(self) -> bytes | None:
        """The bytes to send: text as UTF-8, any other JSON value encoded as JSON."""
        if self.data is None:
            return None
        if isinstance(self.data, str):
            return self.data.encode()
        return json.dumps(self.data, separators=(",", ":")).encode()

    def send_headers(self) -> dict[str, str]:
        """Headers to send; JSON `data` gets a JSON content type unless one was given."""
        if self.data is None or isinstance(self.data, str):
            return self.headers
        if any(name.lower() == "content-type" for name in self.headers):
            return self.headers
        return {**self.headers, "Content-Type": "application/json"}

    def to_stored(self) -> tuple[str, str, str]:
        """The JSON the store keeps: the small fields, the headers and the data, apart, so a
        listing reads only the parts it shows (see `request_resource`)."""
        timeout: float | int = int(self.timeout) if self.timeout.is_integer() else self.timeout
        small: dict[str, Any] = {"timeout": timeout, "url": self.url, "method": self.method.lower()}
        if self.id is not None:
            small["id"] = self.id
        if self.delivery is not NO_DELIVERY:
            small.update(self.delivery.to_stored())
        # Most descriptions have neither headers nor data: their JSON is known (enqueue's hot path).
        headers = json.dumps(self.headers) if self.headers else "{}"
        return json.dumps(small), headers, "null" if self.data is None else json.dumps(self.data)

    def to_resource(self, uuid: str, time_ms: int, status: Status | str) -> dict[str, Any]:
        """The request resource (see `request_resource`)."""
        return request_resource(uuid, status, time_ms, *self.to_stored())

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> RequestSpec:
        """Rebuild from a request resource (trusted: it was validated when it was queued)."""
        return cls(
            url=resource["url"],
            method=resource["method"].upper(),
            headers=resource["headers"],
            data=resource["data"],
            timeout=float(resource["timeout"]),
            id=resource.get("id"),
            delivery=Delivery.from_stored(resource)
            if any(name in resource for name in _DELIVERY_SHOWN)
            else NO_DELIVERY,
        )

    @classmethod
    def from_stored(cls, small: StoredJson, headers: StoredJson, data: StoredJson) -> RequestSpec:
        """Rebuild from what `to_stored` gave."""
        return cls.from_resource(_merge_stored(small, headers, data))


StoredJson = bytes | str | None


def request_resource(
    uuid: str,
    status: Status | str,
    time_ms: int | None,
    small: StoredJson,
    headers: StoredJson = None,
    data: StoredJson = None,
    replaced_by: str | None = None,
) -> dict[str, Any]:
    """The request resource in the spec's field order, from its stored parts (any may be left
    out by a listing that does not show it); `id` and `replaced_by` only when there are any."""
    stored = _merge_stored(small, headers, data)
    resource: dict[str, Any] = {
        "timeout": stored.get("timeout"),
        "status": str(status),
        "data": stored.get("data"),
        "headers": stored.get("headers"),
        "url": stored.get("url"),
        "method": stored.get("method"),
        "uuid": uuid,
        "time": stored.get("time") if time_ms is None else time_ms,
    }
    if "id" in stored:
        resource["id"] = stored["id"]
    for name in _DELIVERY_SHOWN:
        if name in stored:
            resource[name] = stored[name]
    if replaced_by:
        resource["replaced_by"] = replaced_by
    return resource


_DELIVERY_SHOWN = ("retries", "retry_on", "backoff", "callback", "failure_callback")


def _merge_stored(small: StoredJson, headers: StoredJson, data: StoredJson) -> dict[str, Any]:
    # htq 0.2 kept the whole resource in `small`; its `headers` and `data` are found there.
    stored: dict[str, Any] = json.loads(small) if small else {}
    if headers is not None:
        stored["headers"] = json.loads(headers)
    if data is not None:
        stored["data"] = json.loads(data)
    return stored


def parse_request(body: bytes, *, max_timeout: float = MAX_TIMEOUT) -> RequestSpec:
    """Decode and validate a POSTed request description, or raise an HtqError saying why."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedRequest("The body is nested too deeply to be read.") from None
    if not isinstance(payload, dict):
        raise MalformedRequest(
            f"The body must be a JSON object describing the request, not {_json_type(payload)}."
        )
    spec = validate_request(payload, max_timeout=max_timeout)
    if _ESCAPED_SURROGATE.search(body):  # rare: only then is the slower check worth it
        _refuse_unencodable(payload)
    return spec


def validate_request(payload: dict[str, Any], *, max_timeout: float = MAX_TIMEOUT) -> RequestSpec:
    unknown = sorted(set(payload) - REQUEST_FIELDS)
    if unknown:
        raise InvalidField(
            f"Unknown field(s): {', '.join(unknown)}. "
            f"Allowed: {', '.join(sorted(REQUEST_FIELDS))}.",
            unknown[0],
        )
    data = payload.get("data")
    return RequestSpec(
        url=_validate_url(payload.get("url")),
        method=_validate_method(payload.get("method"), has_data=data is not None),
        headers=_validate_headers(payload.get("headers")),
        data=_validate_data(data),
        timeout=_validate_timeout(payload.get("timeout"), max_timeout),
        id=_validate_id(payload.get("id")),
        delivery=validate_delivery(payload, _validate_url),
        due=validate_due(payload, now_ms())
        if "delay" in payload or "not_before" in payload
        else None,
    )


def _refuse_unencodable(payload: dict[str, Any]) -> None:
    """A string UTF-8 cannot encode (a lone surrogate such as "\\ud800") cannot be sent or
    stored: name the field that holds one."""
    for name, value in payload.items():
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidField(
                f"`{name}` holds text that is not valid Unicode (a lone surrogate such as "
                "\\ud800).",
                name,
            ) from None


def _validate_url(url: Any, name: str = "url") -> str:
    if url is None:
        raise InvalidField(f"`{name}` is required: the URL to send the request to.", name)
    if not isinstance(url, str):
        raise InvalidField(f"`{name}` must be a string, not {_json_type(url)}.", name)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidField(
            f"`{name}` must be at most {MAX_URL_LENGTH} characters, not {len(url)}.", name
        )
    if _has_control(url) or " " in url:
        raise InvalidField(f"`{name}` must not contain spaces or control characters.", name)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidField(f"`{name}` is not a valid URL: {exc}.", name) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidField(f"`{name}` must be an http:// or https:// URL, not {url!r}.", name)
    if not parts.hostname:
        raise InvalidField(f"`{name}` has no host: {url!r}.", name)
    if not parts.hostname.isascii():
        try:
            url_host(parts.hostname)  # what the worker will make of it (IDNA)
        except ValueError as exc:
            raise InvalidField(
                f"`{name}` has a host that cannot be sent to: {exc}.", name
            ) from None
    if port == 0:
        raise InvalidField(f"`{name}` has an invalid port: {url!r}.", name)
    return url


def _validate_method(method: Any, *, has_data: bool) -> str:
    if method is None:
        return "POST" if has_data else "GET"
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise InvalidField(
            f"`method` must be an HTTP method such as GET or POST, not {method!r}.", "method"
        )
    return method.upper()


def _validate_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise InvalidField(
            f"`headers` must be an object of strings, not {_json_type(headers)}.", "headers"
        )
    if len(headers) > MAX_HEADERS:
        raise InvalidField(f"At most {MAX_HEADERS} headers, not {len(headers)}.", "headers")
    size = sum(len(name) + (len(value) if isinstance(value, str) else 0)
               for name, value in headers.items())  # fmt: skip
    if size > MAX_HEADER_BYTES:
        raise InvalidField(
            f"The headers take {size} characters; at most {MAX_HEADER_BYTES}.", "headers"
        )
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise InvalidField(f"Header name {name!r} is not a valid HTTP header name.", "headers")
        if name.lower() in OWNED_HEADERS:
            raise InvalidField(
                f"Header {name!r} cannot be set: the worker sets it from the body and the "
                "connection.",
                "headers",
            )
        if not isinstance(value, str):
            raise InvalidField(
                f"Header {name!r} must have a string value, not {_json_type(value)}.", "headers"
            )
        if _has_control(value, allow_tab=True):
            raise InvalidField(
                f"Header {name!r} must not contain CR, LF or control characters.", "headers"
            )
        if not value.isascii():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise InvalidField(
                    f"Header {name!r} has characters HTTP cannot carry (only Latin-1 can be "
                    "sent); percent-encode them or send them in the body.",
                    "headers",
                ) from None
    return dict(headers)


def _validate_data(data: Any) -> Any:
    if data is None or isinstance(data, str):
        return data
    try:  # what the worker will send, checked now: JSON has no NaN or Infinity
        json.dumps(data, allow_nan=False)
    except ValueError:
        raise InvalidField(
            "`data` must not contain NaN or Infinity (or a number too large for a double): "
            "JSON has no such numbers.",
            "data",
        ) from None
    except RecursionError:
        raise InvalidField("`data` is nested too deeply.", "data") from None
    return data


def _validate_timeout(timeout: Any, max_timeout: float) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidField(
            f"`timeout` must be a number of seconds, not {_json_type(timeout)}.", "timeout"
        )
    if not 0 < timeout <= max_timeout:
        raise InvalidField(
            f"`timeout` must be more than 0 and at most {max_timeout:g} seconds (the server's "
            f"--max-timeout), not {timeout}.",
            "timeout",
        )
    return float(timeout)


def _validate_id(ident: Any) -> str | None:
    if ident is None:
        return None
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        raise InvalidField(f"`id` must be a string or an integer, not {_json_type(ident)}.", "id")
    text = str(ident)
    if not text or len(text) > MAX_ID_LENGTH or _has_control(text):
        raise InvalidField(
            f"`id` must be 1 to {MAX_ID_LENGTH} characters without control characters.", "id"
        )
    return text


def _has_control(text: str, *, allow_tab: bool = False) -> bool:
    return (_CONTROL_BUT_TAB if allow_tab else _CONTROL).search(text) is not None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def response_resource(
    uuid: str,
    status: Status,
    *,
    time_ms: int,
    elapsed_ms: float,
    code: int | None = None,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
    data: str | None = None,
    encoding: str | None = None,
    truncated: bool = False,
    message: str | None = None,
) -> dict[str, Any]:
    """The stored response in the spec's field order.

    A `success` carries `code, reason, headers, data` (plus `encoding: "base64"` for a body that
    is not text, and `truncated: true` when the body was cut at the size cap); an `error` or
    `timeout` carries a `message` for a person instead.
    """
    resource: dict[str, Any] = {
        "status": str(status),
        "time": time_ms,
    }
    if status is Status.SUCCESS:
        resource.update(code=code, reason=reason, elapsed=round(elapsed_ms, 2), uuid=uuid)
        resource.update(headers=headers or {}, data=data)
        if encoding:
            resource["encoding"] = encoding
        if truncated:
            resource["truncated"] = True
    else:
        resource.update(elapsed=round(elapsed_ms, 2), uuid=uuid, message=message)
    return resource

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

from htq.errors import InvalidField, MalformedRequest


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

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 86400.0
MAX_ID_LENGTH = 256
REQUEST_FIELDS = frozenset({"url", "method", "headers", "data", "timeout", "id"})

# RFC 9110 token characters, for the method and header names.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # control characters (DEL too)
_CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every `time` field."""
    return int(time.time() * 1000)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def is_uuid(text: str) -> bool:
    """True for a canonical lower-case UUID, the only form htq hands out."""
    return bool(_UUID.match(text))


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A validated description of an HTTP request to send later."""

    url: str
    method: str
    headers: dict[str, str]
    data: Any
    timeout: float
    id: str | None = None

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

    def to_resource(self, uuid: str, time_ms: int, status: Status | str) -> dict[str, Any]:
        """The request resource in the spec's field order; `id` only when one was given."""
        timeout: float | int = int(self.timeout) if self.timeout.is_integer() else self.timeout
        resource: dict[str, Any] = {
            "timeout": timeout,
            "status": str(status),
            "data": self.data,
            "headers": self.headers,
            "url": self.url,
            "method": self.method.lower(),
            "uuid": uuid,
            "time": time_ms,
        }
        if self.id is not None:
            resource["id"] = self.id
        return resource

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> RequestSpec:
        """Rebuild from a stored resource (trusted: it was validated when it was queued)."""
        return cls(
            url=resource["url"],
            method=resource["method"].upper(),
            headers=resource["headers"],
            data=resource["data"],
            timeout=float(resource["timeout"]),
            id=resource.get("id"),
        )


def parse_request(body: bytes) -> RequestSpec:
    """Decode and validate a POSTed request description, or raise an HtqError saying why."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedRequest(
            f"The body must be a JSON object describing the request, not {_json_type(payload)}."
        )
    return validate_request(payload)


def validate_request(payload: dict[str, Any]) -> RequestSpec:
    unknown = sorted(set(payload) - REQUEST_FIELDS)
    if unknown:
        raise InvalidField(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(REQUEST_FIELDS))}."
        )
    data = payload.get("data")
    return RequestSpec(
        url=_validate_url(payload.get("url")),
        method=_validate_method(payload.get("method"), has_data=data is not None),
        headers=_validate_headers(payload.get("headers")),
        data=data,
        timeout=_validate_timeout(payload.get("timeout")),
        id=_validate_id(payload.get("id")),
    )


def _validate_url(url: Any) -> str:
    if url is None:
        raise InvalidField("`url` is required: the URL to send the request to.")
    if not isinstance(url, str):
        raise InvalidField(f"`url` must be a string, not {_json_type(url)}.")
    if _has_control(url) or " " in url:
        raise InvalidField("`url` must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidField(f"`url` is not a valid URL: {exc}.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidField(f"`url` must be an http:// or https:// URL, not {url!r}.")
    if not parts.hostname:
        raise InvalidField(f"`url` has no host: {url!r}.")
    if port == 0:
        raise InvalidField(f"`url` has an invalid port: {url!r}.")
    return url


def _validate_method(method: Any, *, has_data: bool) -> str:
    if method is None:
        return "POST" if has_data else "GET"
    if not isinstance(method, str) or not _TOKEN.match(method):
        raise InvalidField(f"`method` must be an HTTP method such as GET or POST, not {method!r}.")
    return method.upper()


def _validate_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise InvalidField(f"`headers` must be an object of strings, not {_json_type(headers)}.")
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise InvalidField(f"Header name {name!r} is not a valid HTTP header name.")
        if not isinstance(value, str):
            raise InvalidField(
                f"Header {name!r} must have a string value, not {_json_type(value)}."
            )
        if _has_control(value, allow_tab=True):
            raise InvalidField(f"Header {name!r} must not contain CR, LF or control characters.")
    return dict(headers)


def _validate_timeout(timeout: Any) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidField(f"`timeout` must be a number of seconds, not {_json_type(timeout)}.")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise InvalidField(
            f"`timeout` must be more than 0 and at most {int(MAX_TIMEOUT)} seconds, not {timeout}."
        )
    return float(timeout)


def _validate_id(ident: Any) -> str | None:
    if ident is None:
        return None
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        raise InvalidField(f"`id` must be a string or an integer, not {_json_type(ident)}.")
    text = str(ident)
    if not text or len(text) > MAX_ID_LENGTH or _has_control(text):
        raise InvalidField(
            f"`id` must be 1 to {MAX_ID_LENGTH} characters without control characters."
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

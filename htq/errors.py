"""The one exception tree; the server maps it to HTTP answers in one place.

HtqError                 every error htq raises on purpose
├── ClientError          the caller asked for something wrong (4xx)
│   ├── MalformedRequest     400 the body is not a JSON object
│   ├── InvalidField         422 a field has a bad value (`field` names it), or is unknown
│   ├── BodyTooLarge         413 the body is over the size limit
│   ├── UnsupportedMediaType 415 the body is not JSON
│   ├── Unauthorized         401 no valid `Authorization: Bearer <token>` (tokens are set)
│   ├── Forbidden            403 a web page whose origin may not call the API
│   │   └── SentByHtq            403 `POST /` sent by an htq worker (it could loop)
│   ├── NotFound             404 no such request, or no response (yet, or any more)
│   └── Conflict             409 not in a state that allows it (retry of a queued request...)
├── StoreUnavailable     503 Redis cannot be reached
└── ConfigError          a bad option value or setting (the CLI prints it and exits 2)
"""

from __future__ import annotations


class HtqError(Exception):
    """Base of every error htq raises on purpose."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class ClientError(HtqError):
    """`field` names the field or query parameter at fault, if one is."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict[str, str]:
        body = super().to_json()
        if self.field is not None:
            body["field"] = self.field
        return body


class MalformedRequest(ClientError):
    status_code = 400
    code = "malformed"


class InvalidField(ClientError):
    """A field of the request description is wrong; `field` names it (None: several, or unknown
    ones), so a program can point at it without reading the message."""

    status_code = 422
    code = "invalid"


class BodyTooLarge(ClientError):
    status_code = 413
    code = "too_large"


class UnsupportedMediaType(ClientError):
    status_code = 415
    code = "unsupported_media_type"


class Unauthorized(ClientError):
    """The server has tokens and the call carried none of them; `challenge` is the
    `WWW-Authenticate` value (RFC 6750: `error="invalid_token"` when a token was wrong)."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(ClientError):
    status_code = 403
    code = "forbidden"


class SentByHtq(Forbidden):
    code = "loop"


class NotFound(ClientError):
    status_code = 404
    code = "not_found"


class Conflict(ClientError):
    status_code = 409
    code = "conflict"


class StoreUnavailable(HtqError):
    status_code = 503
    code = "unavailable"


class ConfigError(HtqError):
    code = "config"

"""The document's schemas: the request description, the request and response resources,
the listing, the counts and the error shape (the delivery fields are in _delivery.py)."""

from __future__ import annotations

from htq.errors import ConfigError, HtqError
from htq.masking import MASK, SECRET_HEADERS
from htq.models import (
    DEFAULT_TIMEOUT,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_ID_LENGTH,
    MAX_URL_LENGTH,
    OWNED_HEADERS,
    Status,
)
from htq.outbound import HTTP_METHODS
from htq.server.openapi import _delivery
from htq.server.openapi._refs import (
    HEADER_VALUE,
    LINKS,
    NO_CONTROL,
    TOKEN_CHARS,
    UUID_PATTERN,
    Json,
    any_case,
    schema_ref,
)


def _error_codes() -> list[str]:
    """The `error` codes the server answers: its error tree's, and Tornado's 405."""
    found: set[str] = set()
    pending: list[type[HtqError]] = [HtqError]
    while pending:
        kind = pending.pop()
        pending += kind.__subclasses__()
        if not issubclass(kind, ConfigError):  # the CLI's, never answered
            found.add(kind.code)
    return sorted(found | {"method_not_allowed"})


def schemas(max_timeout: float, any_method: bool) -> Json:
    return {
        "Uuid": {"type": "string", "pattern": UUID_PATTERN, "examples": [_EXAMPLE_UUID]},
        "Status": {
            "type": "string",
            "enum": [str(status) for status in Status],
            "description": "`queued` (waiting for a worker, or for its `due` time) → `pending` "
            "(a worker has it) → `success` (any HTTP response, whatever its code), `error` (no "
            "response) or `timeout`; `DELETE` makes any of them `canceled`. An attempt to be "
            "tried again (`retries`) goes back to `queued`, and so does a finished request "
            "`POST /{uuid}/retry/` queues again.",
        },
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "additionalProperties": False,
            "properties": {
                "error": {"type": "string", "enum": _error_codes()},
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "field": {
                    "type": "string",
                    "description": "On a `422`: the field of the request description at "
                    "fault; on a `400`: the query parameter at fault.",
                },
            },
        },
        "RequestDescription": _request_description(max_timeout, any_method),
        "RequestResource": {
            "type": "object",
            "description": "A queued request. `id`, `replaced_by` and the delivery fields "
            "appear only when set, `result` once the request was answered, `due` while it waits "
            "for its time, `attempts` once it was tried again, `callback_result` once its "
            "callback was called.",
            "required": ["timeout", "status", "data", "headers", "url", "method", "uuid", "time"],
            "additionalProperties": False,
            "properties": _resource_properties(),
        },
        "ListedRequest": {
            "type": "object",
            "description": "A request as listed: the request resource and its `links`, or only "
            "the `fields` asked for (and `uuid`).",
            "required": ["uuid"],
            "additionalProperties": False,
            "properties": {**_resource_properties(), "links": schema_ref("Links")},
        },
        "Links": {
            "type": "object",
            "description": "The request's URLs: its response, itself, its status and its attempts.",
            "required": list(LINKS),
            "additionalProperties": False,
            "properties": {rel: {"type": "string", "format": "uri"} for rel in LINKS},
        },
        "Result": _result(),
        **_delivery.schemas(),
        "Response": {"oneOf": [schema_ref("Success"), schema_ref("Failure")]},
        "Success": _success(),
        "Failure": _failure(),
        "Waiting": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "string", "enum": [str(Status.QUEUED), str(Status.PENDING)]},
            },
        },
        "StatusOnly": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": schema_ref("Status")},
        },
        "Stats": _stats_schema(),
        "Health": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": {"const": "ok"}},
        },
    }


_EXAMPLE_UUID = "a936e1a1-68d8-4433-a0c0-4f4b2111670d"


def _request_description(max_timeout: float, any_method: bool) -> Json:
    owned = "|".join(any_case(name) for name in sorted(OWNED_HEADERS))
    if any_method:
        method, methods = f"^[{TOKEN_CHARS}]+$", "Any HTTP method token (`--any-method`)."
    else:
        method = "^(" + "|".join(any_case(name) for name in sorted(HTTP_METHODS)) + ")$"
        methods = (
            "An HTTP method, in any case: "
            + ", ".join(f"`{name}`" for name in sorted(HTTP_METHODS))
            + " (others with the server's `--any-method`)."
        )
    url = {
        "type": "string",
        "maxLength": MAX_URL_LENGTH,
        "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x20\\x7f]+$",
    }
    return {
        "type": "object",
        "description": "What to send, and (all optional) how to deliver it. Unknown fields are "
        "refused (`422`), not ignored; `null` is the same as leaving a field out.",
        "required": ["url"],
        "additionalProperties": False,
        **_delivery.DELAY_OR_NOT_BEFORE,
        "properties": {
            "url": {
                **url,
                "description": "Where to send the request: an `http://` or `https://` URL with "
                "a host (and a valid port, if any), without spaces or control characters, whose "
                "host the outbound guard does not refuse when written as an address (htq's own "
                "Redis, link-local and metadata addresses, and those `--deny` and "
                f"`--deny-private` name). A password in it is sent, but shown as `{MASK}`.",
            },
            "method": {
                "type": ["string", "null"],
                "pattern": method,
                "description": f"{methods} Default: `GET`, or `POST` when `data` is given.",
            },
            "headers": {
                "type": ["object", "null"],
                "maxProperties": MAX_HEADERS,
                "propertyNames": {
                    "pattern": f"^[{TOKEN_CHARS}]+$",
                    "not": {"pattern": f"^({owned})$"},
                },
                "additionalProperties": {"type": "string", "pattern": HEADER_VALUE},
                "description": "Header names to string values (Latin-1, no control characters "
                f"but the tab), at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} characters "
                "in all. The worker sets "
                + ", ".join(f"`{name}`" for name in sorted(OWNED_HEADERS))
                + " itself, so these are refused. Credentials ("
                + ", ".join(f"`{name}`" for name in sorted(SECRET_HEADERS))
                + f") are sent as given but shown as `{MASK}`. Default: none.",
            },
            "data": {
                "description": "The body: a string is sent as is (UTF-8); any other JSON value "
                "is sent as JSON, with `Content-Type: application/json` unless `headers` set "
                "one. Default: no body.",
            },
            "timeout": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "maximum": max_timeout,
                "default": DEFAULT_TIMEOUT,
                "description": "Seconds for the whole exchange, at most the server's "
                "`--max-timeout`.",
            },
            "id": {
                "oneOf": [
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_ID_LENGTH,
                        "pattern": NO_CONTROL,
                    },
                    {"type": "integer"},
                    {"type": "null"},
                ],
                "description": "Your own identifier (an integer is kept as its decimal text, "
                f"at most {MAX_ID_LENGTH} characters): a new request with the same `id` cancels "
                "the earlier one if it has not finished.",
            },
            **_delivery.description_properties(url),
        },
    }


def _resource_properties() -> Json:
    return {
        "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds."},
        "status": schema_ref("Status"),
        "data": {"description": "The body to send, as given (`null`: none)."},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": f"As given; credentials read `{MASK}`.",
        },
        "url": {"type": "string", "description": f"As given; a password reads `{MASK}`."},
        "method": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9a-z-]+$"},
        "uuid": schema_ref("Uuid"),
        "time": {
            "type": "integer",
            "description": "When it was queued, in milliseconds since the epoch.",
        },
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
        "replaced_by": {
            "$ref": "#/components/schemas/Uuid",
            "description": "The later request with the same `id` that canceled this one.",
        },
        "result": schema_ref("Result"),
        **_delivery.resource_properties(),
    }


def _result() -> Json:
    return {
        "type": "object",
        "description": "A summary of the response, kept when the response is deleted.",
        "required": ["elapsed"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "integer"},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "elapsed": {"type": "number", "minimum": 0},
            "deleted": {"const": True, "description": "The response was deleted."},
        },
    }


def _success() -> Json:
    return {
        "type": "object",
        "description": "The target's response, whatever its code. Redirects are not followed.",
        "required": ["status", "time", "code", "reason", "elapsed", "uuid", "headers", "data"],
        "additionalProperties": False,
        "properties": {
            "status": {"const": str(Status.SUCCESS)},
            "time": {"type": "integer", "description": "When it was received (epoch ms)."},
            "code": {"type": "integer", "minimum": 100, "maximum": 999},
            "reason": {"type": "string"},
            "elapsed": {"type": "number", "minimum": 0, "description": "Milliseconds."},
            "uuid": schema_ref("Uuid"),
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "As the target sent them; repeated ones joined with `, `.",
            },
            "data": {
                "type": "string",
                "description": "The body, decoded from any gzip or deflate `Content-Encoding`: "
                "text as is, anything else base64.",
            },
            "encoding": {"const": "base64", "description": "`data` is base64."},
            "truncated": {
                "const": True,
                "description": "The body was cut at the worker's `--max-response-bytes`.",
            },
        },
    }


def _failure() -> Json:
    return {
        "type": "object",
        "description": "No response: `error` (connection refused, DNS, TLS, protocol...) or "
        "`timeout`.",
        "required": ["status", "time", "elapsed", "uuid", "message"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": [str(Status.ERROR), str(Status.TIMEOUT)]},
            "time": {"type": "integer"},
            "elapsed": {"type": "number", "minimum": 0},
            "uuid": schema_ref("Uuid"),
            "message": {"type": "string"},
        },
    }


def _stats_schema() -> Json:
    count = {"type": "integer", "minimum": 0}
    counters = {
        "total": "Requests kept.",
        "queue_depth": "Requests queued (those waiting for their `due` time too).",
        "in_flight": "Requests pending.",
        "waiters": "Clients blocked on `/response/` at this server.",
        "fenced": "Results refused because the worker no longer held the request.",
        "retried": "Failed attempts put back to wait for their next (`retries`).",
        "requeued": "Requests queued again because their worker stopped renewing its lease.",
        "lost": "Requests ended as `error` after their workers were lost three times.",
    }
    statuses = [str(status) for status in Status]
    return {
        "type": "object",
        "required": ["counts", *counters],
        "additionalProperties": False,
        "properties": {
            "counts": {
                "type": "object",
                "required": statuses,
                "additionalProperties": False,
                "properties": {status: dict(count) for status in statuses},
            },
            **{name: {**count, "description": text} for name, text in counters.items()},
        },
    }

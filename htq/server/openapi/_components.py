"""The document's reusable parameters, headers and responses."""

from __future__ import annotations

from htq.models import Status
from htq.server.guard import ALLOW_HEADERS, ALLOW_METHODS
from htq.server.handlers import MAX_WAIT
from htq.server.openapi._refs import IDEMPOTENCY_KEY, LINKS, Json, content, ref, schema_ref
from htq.server.queue import DEFAULT_LIMIT, MAX_LIMIT
from htq.store import LISTED_FIELDS


def _query_number(description: str, *, whole: bool = False) -> str:
    digits = "at most 15, no point" if whole else "at most 15 before the point and 15 after it"
    return (
        f"{description} Written in plain decimal digits ({digits}), no sign, no exponent, no "
        "blanks. An empty value is the same as none."
    )


def _or_empty(number: Json) -> Json:
    """A query number, or the empty value that stands for its default."""
    return {"anyOf": [number, {"const": ""}]}


# -- parameters and headers ----------------------------------------------------------------


def parameters() -> Json:
    return {
        "Uuid": {
            "name": "uuid",
            "in": "path",
            "required": True,
            "description": "The request's id, as in the `Location` of `POST /`.",
            "schema": schema_ref("Uuid"),
        },
        "AnyUuid": {
            "name": "uuid",
            "in": "path",
            "required": True,
            "description": "Any path segment: a preflight does not look the request up.",
            "schema": {"type": "string", "minLength": 1},
        },
        "Status": {
            "name": "status",
            "in": "query",
            "description": "The status of the requests to list; `all` for every one.",
            "schema": {
                "type": "string",
                "enum": [*(str(status) for status in Status), "all"],
                "default": str(Status.QUEUED),
            },
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "description": _query_number("The most requests on a page.", whole=True),
            "schema": _or_empty(
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
            ),
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "description": 'Where the page starts: only from a `Link: rel="next"` URL. An empty '
            "value is the same as none: the first page.",
            "schema": {"type": "string", "pattern": "^([0-9]{1,18})?$"},
        },
        "Fields": {
            "name": "fields",
            "in": "query",
            "description": "Only these fields of each request (`uuid` always stays), and only "
            "these are read from Redis: `fields=uuid,status` stays quick however large the "
            "bodies are. Comma-separated; empty names are ignored, and no name at all "
            "(`fields=`) means every field.",
            "style": "form",
            "explode": False,
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": ["", *sorted(LISTED_FIELDS)]},
            },
        },
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "description": "The `Etag` of a page read before: `304` while it is unchanged.",
            "schema": {"type": "string"},
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": "Makes the call safe to repeat: the first call with a key queues the "
            "request, and every later one with the same key and the same description (the same "
            "JSON, whatever its spacing or key order) answers the same `303` to that request, "
            "with `Idempotent-Replayed: true`, instead of queueing another; the same key with "
            "another description is refused (`409`). A key is remembered for the server's "
            "`--idempotency-ttl` (24 hours by default). 1 to 255 visible ASCII characters "
            "(`422`, `field`: `Idempotency-Key`, otherwise). Unlike `id`, which cancels the "
            "earlier request, a key returns it.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": IDEMPOTENCY_KEY,
            },
        },
        "Wait": {
            "name": "wait",
            "in": "query",
            "description": _query_number("The most seconds to wait; `202` if not done by then."),
            "schema": _or_empty({"type": "number", "minimum": 0, "maximum": MAX_WAIT}),
        },
    }


def headers() -> Json:
    link = '<[^>]+>; rel="{}"'
    return {
        "Location": {
            "description": "The queued request's URL.",
            "required": True,
            "schema": {"type": "string", "format": "uri", "pattern": "/[0-9a-f-]{36}/$"},
        },
        "Etag": {
            "description": "The page's entity tag, for `If-None-Match`.",
            "required": True,
            "schema": {"type": "string", "pattern": '^(W/)?"[^"]*"$'},
        },
        "NextLink": {
            "description": "The next page's URL, when there is more.",
            "schema": {"type": "string", "pattern": f"^{link.format('next')}$"},
        },
        "RequestLinks": {
            "description": "The request's response, itself, its status and its attempts.",
            "required": True,
            "schema": {
                "type": "string",
                "pattern": "^" + ", ".join(link.format(r) for r in LINKS) + "$",
            },
        },
        "ResponseLinks": {
            "description": "The request, and the response itself.",
            "required": True,
            "schema": {
                "type": "string",
                "pattern": "^" + ", ".join(link.format(r) for r in ("request", "self")) + "$",
            },
        },
        "AttemptsLinks": {
            "description": "The request.",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{link.format('request')}$"},
        },
        "IdempotentReplayed": {
            "description": "The `Idempotency-Key` was used before, with the same description: "
            "`Location` is the request that call queued, and nothing new was queued.",
            "schema": {"type": "string", "const": "true"},
        },
        "WwwAuthenticate": {
            "description": 'The challenge (RFC 6750), with `error="invalid_token"` when the '
            "token given is not one the server accepts.",
            "required": True,
            "schema": {"type": "string", "pattern": '^Bearer realm="htq"'},
        },
        "AllowMethods": {
            "description": "The methods a page may use.",
            "required": True,
            "schema": {"type": "string", "const": ALLOW_METHODS},
        },
        "AllowHeaders": {
            "description": "The headers a page may send.",
            "required": True,
            "schema": {"type": "string", "const": ALLOW_HEADERS},
        },
        "MaxAge": {
            "description": "How long a browser may keep this answer, in seconds.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        "AllowOrigin": {
            "description": "The calling origin, when `--cors-origins` allows it.",
            "schema": {"type": "string"},
        },
    }


# -- responses -----------------------------------------------------------------------------


def _error(description: str, with_headers: Json | None = None) -> Json:
    response: Json = {"description": description, "content": content(schema_ref("Error"))}
    if with_headers:
        response["headers"] = with_headers
    return response


def responses(max_body: int) -> Json:
    return {
        "BadRequest": _error(
            "A body that is not a JSON object (`malformed`), a query parameter with a bad "
            "value (`bad_request`), or a `Host` this server does not answer to (`bad_request`; "
            "`--allowed-hosts` names more)."
        ),
        "Unauthorized": _error(
            "The server has tokens and the call carried none it accepts (`unauthorized`).",
            {"WWW-Authenticate": ref("headers", "WwwAuthenticate")},
        ),
        "Forbidden": _error(
            "A web page whose `Origin` may not call this server (`forbidden`; "
            "`--cors-origins` names those that may), or, at `POST /`, a call an htq worker sent "
            "(`loop`: its `User-Agent: htq/...` or an `Htq-` header; a request that queues "
            "requests could loop)."
        ),
        "NotFound": _error(
            "No such request (never queued, or expired), or, at `/{uuid}/response/`, it has no "
            "response (not yet, deleted, or canceled) (`not_found`)."
        ),
        "TooLarge": _error(f"The body is over {max_body} bytes (`too_large`; `--max-body`)."),
        "UnsupportedMediaType": _error(
            "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`)."
        ),
        "Invalid": _error(
            "A field has a bad value, or is unknown (`invalid`); `field` names it. A bad "
            "`Idempotency-Key` header too (`field`: `Idempotency-Key`)."
        ),
        "KeyConflict": _error(
            "The `Idempotency-Key` was used before with another request description "
            "(`conflict`): use a new key for a new request."
        ),
        "NotFinished": _error(
            "The request is `queued` or `pending`, was replaced by a later one with its `id`, "
            "or another request holding its `id` is (`conflict`): only a finished one is "
            "queued again."
        ),
        "Unavailable": _error("Redis cannot be reached (`unavailable`): retry later."),
        "Preflight": {
            "description": "The preflight's answer. No body.",
            "headers": {
                "Access-Control-Allow-Methods": ref("headers", "AllowMethods"),
                "Access-Control-Allow-Headers": ref("headers", "AllowHeaders"),
                "Access-Control-Max-Age": ref("headers", "MaxAge"),
                "Access-Control-Allow-Origin": ref("headers", "AllowOrigin"),
            },
        },
    }

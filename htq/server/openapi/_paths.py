"""The document's paths: each operation, and the answers it may give."""

from __future__ import annotations

from htq.server.openapi._refs import Json, content, ref, schema_ref
from htq.server.queue import MAX_LIMIT
from htq.store import PAGE_BYTES

_UUID = ref("parameters", "Uuid")


def paths() -> Json:
    return {
        "/": {
            "get": _list_requests(),
            "post": _queue_request(),
            "options": _preflight("Queue"),
        },
        "/stats": {"get": _stats(), "options": _preflight("Stats")},
        "/healthz": {"get": _health(), "options": _preflight("Health")},
        "/openapi.json": {"get": _openapi(), "options": _preflight("OpenApi")},
        "/{uuid}/": {
            "get": _get_request(),
            "delete": _cancel_request(),
            "options": _preflight("Request", ref("parameters", "AnyUuid")),
        },
        "/{uuid}/status/": {
            "get": _get_status(),
            "options": _preflight("Status", ref("parameters", "AnyUuid")),
        },
        "/{uuid}/response/": {
            "get": _get_response(),
            "delete": _delete_response(),
            "options": _preflight("Response", ref("parameters", "AnyUuid")),
        },
        "/{uuid}/attempts/": {
            "get": _get_attempts(),
            "options": _preflight("Attempts", ref("parameters", "AnyUuid")),
        },
        "/{uuid}/retry/": {
            "post": _retry_request(),
            "options": _preflight("Retry", ref("parameters", "AnyUuid")),
        },
    }


def with_heads(paths: Json, responses: Json) -> Json:
    """Each GET followed by its HEAD (RFC 9110): the same answers and headers, no body."""
    for path, item in paths.items():
        listed: Json = {}
        for method, operation in item.items():
            listed[method] = operation
            if method == "get":
                listed["head"] = _head(operation, responses)
        paths[path] = listed
    return paths


def _head(get: Json, responses: Json) -> Json:
    name = get["operationId"]
    answers = {}
    for code, answer in get["responses"].items():
        if "$ref" in answer:
            answer = responses[answer["$ref"].rsplit("/", 1)[1]]
        answers[code] = {key: value for key, value in answer.items() if key != "content"}
    return {
        **get,
        "operationId": f"head{name[0].upper()}{name[1:]}",
        "summary": f"{get['summary']}: the headers only",
        "description": "As `GET`, waiting as it does, with the same status and headers "
        "(`Content-Length` included) and no body.",
        "responses": answers,
    }


def _operation(
    operation_id: str,
    summary: str,
    description: str,
    responses: Json,
    *,
    tag: str = "requests",
    parameters: list[Json] | None = None,
    public: bool = False,
    uses_redis: bool = True,
) -> Json:
    """An operation with the refusals every call may get: a Host or Origin refused (400,
    403), no token (401, unless public) and Redis unreachable (503, if it reads Redis)."""
    common = {"400": ref("responses", "BadRequest"), "403": ref("responses", "Forbidden")}
    if not public:
        common["401"] = ref("responses", "Unauthorized")
    if uses_redis:
        common["503"] = ref("responses", "Unavailable")
    operation: Json = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    if parameters:
        operation["parameters"] = parameters
    if public:
        operation["security"] = []
    operation["responses"] = dict(sorted({**common, **responses}.items()))
    return operation


def _list_requests() -> Json:
    parameters = ["Status", "Limit", "Cursor", "Fields", "IfNoneMatch"]
    return _operation(
        "listRequests",
        "List requests, newest first",
        "One page of requests, newest first, each with its `links` (and, once answered, a "
        'short `result`). When there is more, `Link: <...>; rel="next"` holds the next '
        f"page's URL; a page ends early rather than hold more than {PAGE_BYTES} bytes of "
        "requests (it always holds at least one). Listings carry an `Etag`: a poller sending "
        "`If-None-Match` gets `304 Not Modified` while nothing changed.",
        {
            "200": {
                "description": "A page of requests (an empty array when there are none).",
                "headers": {
                    "Etag": ref("headers", "Etag"),
                    "Link": ref("headers", "NextLink"),
                },
                "content": content(
                    {
                        "type": "array",
                        "maxItems": MAX_LIMIT,
                        "items": schema_ref("ListedRequest"),
                    }
                ),
            },
            "304": {
                "description": "Not Modified: the page is the one `If-None-Match` names.",
                "headers": {"Etag": ref("headers", "Etag")},
            },
        },
        parameters=[ref("parameters", name) for name in parameters],
    )


def _queue_request() -> Json:
    operation = _operation(
        "queueRequest",
        "Queue a request",
        "Queues the described request and answers at once with `303 See Other` to it. A "
        "worker sends it later: once, or as its delivery fields say (`retries`, `delay` or "
        "`not_before`, `callback`). Bad input never changes what is stored. With an "
        "`Idempotency-Key`, a repeated call returns the request the first one queued.",
        {
            "303": {
                "description": "Queued (or, with an `Idempotency-Key` used before, queued "
                "already): `Location` is the request's URL. No body.",
                "headers": {
                    "Location": ref("headers", "Location"),
                    "Idempotent-Replayed": ref("headers", "IdempotentReplayed"),
                },
            },
            "409": ref("responses", "KeyConflict"),
            "413": ref("responses", "TooLarge"),
            "415": ref("responses", "UnsupportedMediaType"),
            "422": ref("responses", "Invalid"),
        },
        parameters=[ref("parameters", "IdempotencyKey")],
    )
    operation["requestBody"] = {
        "required": True,
        "description": "The description of the request to send. Only JSON is accepted "
        "(`application/json` or any `+json` type); anything else is `415`.",
        "content": {
            "application/json": {
                "schema": schema_ref("RequestDescription"),
                "examples": {
                    "plain": {"value": {"url": "http://httpbin.org/ip"}},
                    "delivered": {
                        "summary": "Tried up to 4 times, in a minute, with a callback",
                        "value": {
                            "url": "https://api.example.com/orders",
                            "data": {"order": 42},
                            "retries": 3,
                            "backoff": {"min": 2, "max": 60},
                            "delay": 60,
                            "callback": "https://hooks.example.com/htq",
                        },
                    },
                },
            }
        },
    }
    return operation


def _stats() -> Json:
    return _operation(
        "getStats",
        "Counts per status",
        "Counts per status, queue depth, clients waiting at this server, and counters since "
        "the namespace began.",
        {"200": {"description": "The counts.", "content": content(schema_ref("Stats"))}},
        tag="service",
    )


def _health() -> Json:
    return _operation(
        "getHealth",
        "Whether the server can serve",
        "`200` while the server can reach Redis, `503` otherwise. Needs no token: for load "
        "balancers and probes.",
        {"200": {"description": "Healthy.", "content": content(schema_ref("Health"))}},
        tag="service",
        public=True,
    )


def _openapi() -> Json:
    return _operation(
        "getOpenApi",
        "This document",
        "The OpenAPI 3.1 document of this API, with this server's limits.",
        {
            "200": {
                "description": "The document.",
                "content": content({"type": "object", "required": ["openapi", "paths"]}),
            }
        },
        tag="service",
        uses_redis=False,
    )


def _get_request() -> Json:
    return _operation(
        "getRequest",
        "Read a request",
        "The request as it was queued, with its status. Credentials are shown masked.",
        {
            "200": {
                "description": "The request resource.",
                "headers": {"Link": ref("headers", "RequestLinks")},
                "content": content(schema_ref("RequestResource")),
            },
            "404": ref("responses", "NotFound"),
        },
        parameters=[_UUID],
    )


def _cancel_request() -> Json:
    return _operation(
        "cancelRequest",
        "Cancel a request",
        "Makes the request `canceled`, whatever its status: a queued one is never sent, one "
        "in flight is interrupted and its target gets a `DELETE` of its own (with "
        "`Htq-Request-Id` and `Htq-Attempt`, the attempt canceled), one waiting for its next "
        "attempt is never tried again, and a stored response is deleted. Idempotent.",
        {
            "204": {"description": "Canceled. No body."},
            "404": ref("responses", "NotFound"),
        },
        parameters=[_UUID],
    )


def _get_status() -> Json:
    return _operation(
        "getStatus",
        "Read just a request's status",
        "The lightweight status.",
        {
            "200": {"description": "The status.", "content": content(schema_ref("StatusOnly"))},
            "404": ref("responses", "NotFound"),
        },
        parameters=[_UUID],
    )


def _get_response() -> Json:
    return _operation(
        "getResponse",
        "Read a request's response, waiting until it is done",
        "Blocks until the request is done (`success`, `error` or `timeout`), unless `wait` "
        "bounds the wait. A canceled request, or one whose response was deleted, has none "
        "(`404`).",
        {
            "200": {
                "description": "The response.",
                "headers": {"Link": ref("headers", "ResponseLinks")},
                "content": content(schema_ref("Response")),
            },
            "202": {
                "description": "Not done within `wait`: the request's status.",
                "content": content(schema_ref("Waiting")),
            },
            "404": ref("responses", "NotFound"),
        },
        parameters=[_UUID, ref("parameters", "Wait")],
    )


def _delete_response() -> Json:
    return _operation(
        "deleteResponse",
        "Delete a request's response",
        "Frees the space a stored response takes; the request keeps its status. `404` when "
        "there is no response (not yet, deleted already, or canceled).",
        {
            "204": {"description": "Deleted. No body."},
            "404": ref("responses", "NotFound"),
        },
        parameters=[_UUID],
    )


def _get_attempts() -> Json:
    return _operation(
        "getAttempts",
        "Read a request's attempts",
        "Every attempt to send the request, oldest first (an empty array before the first): "
        "its number, when it began, how long it took, and how it ended (the code and reason, "
        "or the error's message; no bodies). A request retried (`retries`, or "
        "`POST /{uuid}/retry/`) keeps its earlier attempts here.",
        {
            "200": {
                "description": "The attempts.",
                "headers": {"Link": ref("headers", "AttemptsLinks")},
                "content": content({"type": "array", "items": schema_ref("Attempt")}),
            },
            "404": ref("responses", "NotFound"),
        },
        parameters=[_UUID],
    )


def _retry_request() -> Json:
    return _operation(
        "retryRequest",
        "Queue a finished request again",
        "Queues a finished request (`success`, `error`, `timeout` or `canceled`) again, as a "
        "new attempt: its response and callback result are dropped, its attempts kept, and "
        "it holds its `id` again. Refused (`409`) while another request with its `id` is "
        "`queued` or `pending`. No body is needed.",
        {
            "303": {
                "description": "Queued again: `Location` is the request's URL. No body.",
                "headers": {"Location": ref("headers", "Location")},
            },
            "404": ref("responses", "NotFound"),
            "409": ref("responses", "NotFinished"),
        },
        parameters=[_UUID],
    )


def _preflight(name: str, *parameters: Json) -> Json:
    return _operation(
        f"preflight{name}",
        "CORS preflight",
        "What a browser asks before a cross-origin call. Needs no token (browsers send none); "
        "an `Origin` not in `--cors-origins` is refused.",
        {"204": ref("responses", "Preflight")},
        tag="service",
        parameters=list(parameters),
        public=True,
        uses_redis=False,
    )

"""The API's contract: its OpenAPI 3.1 document, served at `GET /openapi.json`.

The document is built from the code's own names and limits (statuses, fields, error codes,
page sizes, `--max-timeout`), so it cannot drift from them; tests/test_openapi.py validates it
and fuzzes the live server against it.

    _paths.py       each operation and the answers it may give
    _components.py  the reusable parameters, headers and responses
    _schemas.py     the request description, the resources, the counts, the error shape
    _delivery.py    the delivery fields (retries, scheduling, callbacks), the attempts
    _refs.py        references, JSON content, the patterns they share
"""

from __future__ import annotations

import functools
import json

from htq import __version__
from htq.outbound import Outbound
from htq.server.base import BaseHandler
from htq.server.openapi._components import headers, parameters, responses
from htq.server.openapi._paths import paths, with_heads
from htq.server.openapi._refs import Json
from htq.server.openapi._schemas import schemas

__all__ = ["OpenApiHandler", "document", "served"]

_DESCRIPTION = """\
The HTTP Task Queue sends HTTP requests in the background: `POST /` a description of a
request, follow the `303 See Other` to the queued request, read its status, and read its
response once a worker has received it. `DELETE` cancels.

Every answer is JSON, errors included: `{"error": "<code>", "message": "<for a person>"}` (and
`"field"` on a `422`). Paths may be written with or without their trailing slash; a method a
path does not list answers `405` (`method_not_allowed`).

**Delivery.** A request is sent once unless its description says otherwise: `retries` (with
`retry_on` and `backoff`, honouring `Retry-After`) tries it again, `delay` or `not_before`
schedules it, `callback` and `failure_callback` are told how it ended. A request waiting for
its time or its next attempt is `queued`, with its `due` time. `GET /{uuid}/attempts/` lists
its attempts, and `POST /{uuid}/retry/` queues a finished request again. An `Idempotency-Key`
header makes `POST /` safe to repeat.

**Authentication.** A server started with tokens (`--token`, `HTQ_TOKENS`, `--token-file`)
answers only calls carrying `Authorization: Bearer <token>` (`401` otherwise), but
`GET /healthz` and CORS preflights. Without tokens (the default, for local use) no header is
needed.

**Browsers.** A call whose `Origin` is not in `--cors-origins` is refused with `403`; one whose
`Host` the server does not answer to (a page rebound to a loopback address) with `400`.
Allowed origins get CORS headers, and `OPTIONS` answers their preflights.
"""


def document(*, max_timeout: float, max_body: int, any_method: bool = False) -> Json:
    """The OpenAPI document of a server with these limits (`any_method`: started with
    `--any-method`)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HTTP Task Queue (htq)",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "BSD-2-Clause", "identifier": "BSD-2-Clause"},
        },
        "servers": [{"url": "/", "description": "This server"}],
        "security": [{"bearer": []}, {}],
        "tags": [
            {"name": "requests", "description": "Queue, read, cancel and retry requests."},
            {"name": "service", "description": "The server itself."},
        ],
        "paths": with_heads(paths(), responses(max_body)),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token the server was started with (`--token`, "
                    "`HTQ_TOKENS`, `--token-file`); not needed when it was started with none.",
                }
            },
            "schemas": schemas(max_timeout, any_method),
            "parameters": parameters(),
            "headers": headers(),
            "responses": responses(max_body),
        },
    }


@functools.cache
def served(max_timeout: float, max_body: int, any_method: bool) -> bytes:
    """The document as `GET /openapi.json` sends it (built once per set of limits)."""
    spec = document(max_timeout=max_timeout, max_body=max_body, any_method=any_method)
    return (json.dumps(spec, indent=2) + "\n").encode()


class OpenApiHandler(BaseHandler):
    """`/openapi.json`: this document, with this server's limits."""

    def get(self) -> None:
        outbound: Outbound = self.settings["outbound"]
        limits = self.settings["max_timeout"], self.settings["max_body"], outbound.any_method
        self.write_raw_json(served(*limits))

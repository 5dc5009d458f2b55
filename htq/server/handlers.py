"""Thin REST handlers: parse, make one store call, render. Errors always answer JSON."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

import tornado.web

from htq.errors import (
    BodyTooLarge,
    ClientError,
    Conflict,
    HtqError,
    InvalidField,
    NotFound,
    StoreUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from htq.models import (
    TERMINAL,
    RequestSpec,
    Status,
    is_uuid,
    masked,
    new_uuid,
    now_ms,
    parse_request,
)
from htq.outbound import Outbound, Refused
from htq.server.guard import ALLOW_HEADERS, ALLOW_METHODS, Guard
from htq.store import LISTED_FIELDS, REDIS_DOWN, AsyncStore, Idempotency, parse_cursor

log = logging.getLogger("htq.server")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_WAIT = 86400.0
# JSON only: text/plain and form bodies are what a web page may send cross-site unasked.
_ACCEPTED_TYPES = ("application/json",)
_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
# A query number: plain ASCII decimals (float() would also take "1_0", "nan" or
# digits of other scripts).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_NUMBER = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")


class BaseHandler(tornado.web.RequestHandler):
    """Every handler answers JSON, including its errors; Redis down becomes 503."""

    @property
    def store(self) -> AsyncStore:
        store: AsyncStore = self.settings["store"]
        return store

    #: Answered without a token (`/healthz`, for load balancers and probes).
    public = False

    def set_default_headers(self) -> None:
        # Here rather than in prepare: an error answer (clear() calls this again) keeps them,
        # so a page that may call the API can read why it was refused.
        self.set_header("Content-Type", "application/json")
        origin = self.request.headers.get("Origin")
        if origin is not None and self.settings["guard"].origin_allowed(origin):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header(
                "Access-Control-Expose-Headers", "Location, Link, Etag, Idempotent-Replayed"
            )
            self.set_header("Vary", "Origin")

    def prepare(self) -> None:
        refusal = self.guard()
        if refusal is not None:
            raise refusal

    def guard(self) -> HtqError | None:
        """Why this call is refused: a Host this server does not answer to, an Origin that may
        not call it, or no valid token (a CORS preflight needs none: browsers send none)."""
        guard: Guard = self.settings["guard"]
        headers = self.request.headers
        try:
            guard.check_host(self.request.host)
            guard.check_origin(headers.get("Origin"))
            if not self.public and self.request.method != "OPTIONS":
                guard.tokens.check(headers.get("Authorization"))
        except HtqError as refusal:
            return refusal
        return None

    def options(self, *args: str) -> None:
        """A CORS preflight (its Origin was checked in prepare)."""
        self.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
        self.set_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
        self.set_header("Access-Control-Max-Age", "600")
        self.no_content()

    def compute_etag(self) -> str | None:
        return None  # live resources: a hash of every body would cost time and save nothing

    def base_url(self) -> str:
        host = self.request.host
        if self.settings.get("xheaders"):
            host = self.request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        return f"{self.request.protocol}://{host}/"

    def request_url(self, uuid: str, *tail: str) -> str:
        return self.base_url() + "/".join((uuid, *tail)) + "/"

    def links(self, uuid: str) -> dict[str, str]:
        return {  # the spec's three as it shows them, then ours
            "response": self.request_url(uuid, "response"),
            "self": self.request_url(uuid),
            "status": self.request_url(uuid, "status"),
            "attempts": self.request_url(uuid, "attempts"),
        }

    def set_links(self, rels: dict[str, str]) -> None:
        """A Link header, relations in the order given (the spec's order, then ours)."""
        self.set_header("Link", ", ".join(f'<{url}>; rel="{rel}"' for rel, url in rels.items()))

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload, indent=4) + "\n")

    def write_raw_json(self, body: bytes | str) -> None:
        self.finish(body)

    def no_content(self, status: int = 204) -> None:
        self.clear_header("Content-Type")
        self.set_status(status)
        self.finish()

    def query_number(
        self, name: str, default: float | None, low: float, high: float
    ) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        if not _NUMBER.fullmatch(raw):
            raise ClientError(f"`{name}` must be a number, not {raw!r}.")
        value = float(raw)
        if not low <= value <= high:
            raise ClientError(f"`{name}` must be between {low:g} and {high:g}, not {raw}.")
        return value

    def known_uuid(self, uuid: str) -> str:
        if not is_uuid(uuid):
            raise NotFound(f"{uuid!r} is not a request id; ids look like the uuid in Location.")
        return uuid

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = _as_htq_error(kwargs.get("exc_info"), status_code, self._reason)
        self.clear()
        self.set_header("Content-Type", "application/json")
        self.set_status(error.status_code)
        if isinstance(error, Unauthorized):
            self.set_header("WWW-Authenticate", error.challenge)
        if error.status_code == 405:  # RFC 9110: say which methods are
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.finish(json.dumps(error.to_json()) + "\n")

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The methods this resource answers (those its class implements)."""
        base = tornado.web.RequestHandler
        return [
            method
            for method in ("GET", "POST", "DELETE", "OPTIONS")
            if getattr(cls, method.lower()) is not getattr(base, method.lower())
        ]

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, HtqError):
            return
        if isinstance(value, REDIS_DOWN):
            return  # the store logs an outage once as it starts and once as it ends
        super().log_exception(typ, value, tb)


def _as_htq_error(exc_info: Any, status_code: int, reason: str) -> HtqError:
    exc = exc_info[1] if exc_info else None
    if isinstance(exc, HtqError):
        return exc
    if isinstance(exc, REDIS_DOWN):
        cause = str(exc).rstrip(".")
        return StoreUnavailable(f"The store (Redis) cannot be reached: {cause}. Try again shortly.")
    error = HtqError(reason or "Internal error.")
    if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
        error.message = exc.log_message % exc.args if exc.args else exc.log_message
    error.status_code = status_code
    error.code = _REASONS.get(status_code, "internal" if status_code >= 500 else "bad_request")
    if status_code == 405:
        error.message = "This method is not allowed on this resource."
    return error


@tornado.web.stream_request_body
class QueueHandler(BaseHandler):
    """`/`: POST queues a request (303 to it); GET lists requests, paged, newest first.

    The body streams in (rather than arriving whole) so that a refusal is ours: a body over
    `--max-body` answers 413 and one that is not JSON 415, as JSON, where Tornado would
    answer a bare 400 (too long, or a multipart body it failed to parse).
    """

    _chunks: list[bytes]
    _size = 0
    _refused: HtqError | None = None

    def prepare(self) -> None:
        # A refusal is raised once the request is read, in the method (as for any handler):
        # answered from here, Tornado would close the connection after the answer, and a
        # client sending its next request on it would read a reset.
        self._chunks = []
        self._refused = self.guard()
        if self.request.method != "POST":
            return
        declared = self._declared_length()
        self._refused = self._refused or self._refusal(declared)
        too_long = declared is not None and declared > self.settings["read_limit"]
        if self._refused is not None and too_long:
            raise self._refused  # too large to read and throw away: the connection closes

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._refused is None and self._size > self.settings["max_body"]:
            self._refused = self._too_large()
            self._chunks = []
        if self._refused is None:
            self._chunks.append(chunk)

    async def post(self) -> None:
        if self._refused is not None:
            raise self._refused
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        spec = parse_request(body, max_timeout=self.settings["max_timeout"])
        self._check_outbound(spec)
        idempotency = self._idempotency(body)
        uuid = new_uuid()
        enqueued = await self.store.enqueue(uuid, spec, now_ms(), idempotency)
        if enqueued.conflict:
            raise Conflict(
                "This Idempotency-Key was used with another request description (request "
                f"{enqueued.existing}); use a new key for a new request."
            )
        if enqueued.existing is not None:
            uuid = enqueued.existing
            self.set_header("Idempotent-Replayed", "true")
        self.clear_header("Content-Type")
        self.set_header("Location", self.request_url(uuid))
        self.set_status(303)
        self.finish()

    def _check_outbound(self, spec: RequestSpec) -> None:
        """What the worker would refuse, refused now: the method, and literal addresses."""
        outbound: Outbound = self.settings["outbound"]
        try:
            outbound.check_method(spec.method)
        except Refused as exc:
            raise InvalidField(str(exc), "method") from None
        urls = {"url": spec.url}
        if spec.delivery.has_callbacks:
            urls["callback"] = spec.delivery.callback or ""
            urls["failure_callback"] = spec.delivery.failure_callback or ""
        for name, url in urls.items():
            try:
                if url:
                    outbound.check_literal(url)
            except Refused as exc:
                raise InvalidField(f"The worker would refuse `{name}`: {exc}", name) from None

    def _idempotency(self, body: bytes) -> Idempotency | None:
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidField(
                "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
                "Idempotency-Key",
            )
        # the same description whatever its spacing, key order, or fields given as null
        given = {name: value for name, value in json.loads(body).items() if value is not None}
        canonical = json.dumps(given, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        return Idempotency(key, fingerprint, self.settings["idempotency_ttl"])

    def _refusal(self, declared: int | None) -> HtqError | None:
        """Why the body will be refused, from its headers alone (None: read it)."""
        if declared is not None and declared > self.settings["max_body"]:
            return self._too_large()
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind not in _ACCEPTED_TYPES and not kind.endswith("+json"):
            return UnsupportedMediaType(
                "Send the request description as JSON (Content-Type: application/json), "
                f"not {kind or 'a body with no Content-Type'}."
            )
        return None

    def _declared_length(self) -> int | None:
        declared = self.request.headers.get("Content-Length", "")
        return int(declared) if declared.isascii() and declared.isdigit() else None

    def _too_large(self) -> BodyTooLarge:
        limit: int = self.settings["max_body"]
        return BodyTooLarge(f"The request description is over {limit} bytes (--max-body).")

    def options(self, *args: str) -> None:
        if self._refused is not None:
            raise self._refused
        super().options(*args)

    async def get(self) -> None:
        if self._refused is not None:
            raise self._refused
        status = self._status_filter()
        limit = int(self.query_number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT)
        try:
            cursor = parse_cursor(self.get_query_argument("cursor", None))
        except ValueError as exc:
            raise ClientError(f"`cursor` is not one this server handed out: {exc}.") from None
        fields = self._fields()
        page = await self.store.list(status, limit, cursor, fields)
        for item in page.items:
            item["links"] = self.links(item["uuid"])
        items = page.items if fields is None else [_only(item, fields) for item in page.items]
        if not self.settings["show_secrets"]:
            items = [masked(item) for item in items]
        if page.cursor is not None:
            query = {"status": str(status or "all"), "limit": limit, "cursor": page.cursor}
            if fields is not None:
                query["fields"] = ",".join(sorted(fields))
            self.set_links({"next": f"{self.base_url()}?{urlencode(query)}"})
        self.write_json(items)

    def compute_etag(self) -> str | None:
        # Listings are polled (the TUI does, every second): If-None-Match gets a 304.
        return tornado.web.RequestHandler.compute_etag(self)

    def _fields(self) -> frozenset[str] | None:
        raw = self.get_query_argument("fields", None)
        if not raw:
            return None
        fields = frozenset(name.strip() for name in raw.split(",") if name.strip())
        unknown = sorted(fields - LISTED_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(LISTED_FIELDS))
            raise ClientError(f"Unknown field(s) in `fields`: {', '.join(unknown)}. Use {allowed}.")
        return fields | {"uuid"}

    def _status_filter(self) -> Status | None:
        raw = self.get_query_argument("status", "queued")
        if raw == "all":
            return None
        try:
            return Status(raw)
        except ValueError:
            names = ", ".join([*Status.__members__.values(), "all"])
            raise ClientError(f"`status` must be one of {names}, not {raw!r}.") from None


def _only(item: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name in fields}


class RequestHandler(BaseHandler):
    """`/<uuid>/`: the request resource; DELETE cancels it."""

    async def get(self, uuid: str) -> None:
        resource = await self.store.get(self.known_uuid(uuid))
        if resource is not None and not self.settings["show_secrets"]:
            resource = masked(resource)
        if resource is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.set_links(self.links(uuid))
        self.write_json(resource)

    async def delete(self, uuid: str) -> None:
        if await self.store.cancel(self.known_uuid(uuid)) is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.no_content()


class AttemptsHandler(BaseHandler):
    """`/<uuid>/attempts/`: every attempt to send the request, oldest first (no bodies)."""

    async def get(self, uuid: str) -> None:
        attempts = await self.store.attempts(self.known_uuid(uuid))
        if attempts is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.set_links({"request": self.request_url(uuid)})
        self.write_json(attempts)


class RetryHandler(BaseHandler):
    """`/<uuid>/retry/`: POST queues a finished request again, as a new attempt (303)."""

    async def post(self, uuid: str) -> None:
        found = await self.store.requeue(self.known_uuid(uuid))
        if found.status is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        if found.replaced_by is not None:
            raise Conflict(
                f"Request {uuid} was replaced by {found.replaced_by} (same `id`): retry that one."
            )
        if not found.done:
            raise Conflict(f"Request {uuid} is {found.status}: only a finished request is retried.")
        self.clear_header("Content-Type")
        self.set_header("Location", self.request_url(uuid))
        self.set_status(303)
        self.finish()


class StatusHandler(BaseHandler):
    """`/<uuid>/status/`: the lightweight status."""

    async def get(self, uuid: str) -> None:
        status = await self.store.status(self.known_uuid(uuid))
        if status is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.finish(json.dumps({"status": str(status)}))


class ResponseHandler(BaseHandler):
    """`/<uuid>/response/`: blocks until the request is done (`?wait=` bounds it).

    DELETE removes the stored response to free space; the request keeps its status.
    """

    _waiting: asyncio.Task[bool] | None = None

    async def get(self, uuid: str) -> None:
        self.known_uuid(uuid)
        wait = self.query_number("wait", None, 0, MAX_WAIT)
        answer = await self.store.response(uuid)
        if answer.status is not None and answer.status not in TERMINAL:
            self._waiting = asyncio.ensure_future(self.store.waiters.wait(uuid, wait))
            try:
                done = await self._waiting
            except asyncio.CancelledError:
                return  # the client went away
            if not done:
                self.write_json({"status": str(await self.store.status(uuid))}, 202)
                return
            answer = await self.store.response(uuid)
        if answer.raw is None:
            raise NotFound(_no_response(uuid, answer.status))
        self.set_links(
            {"request": self.request_url(uuid), "self": self.request_url(uuid, "response")}
        )
        self.write_raw_json(answer.raw)

    def on_connection_close(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()

    async def delete(self, uuid: str) -> None:
        if not await self.store.delete_response(self.known_uuid(uuid)):
            status = await self.store.status(uuid)
            raise NotFound(_no_response(uuid, status))
        self.no_content()


def _no_response(uuid: str, status: Status | None) -> str:
    if status is None:
        return f"No request {uuid} (never queued, or expired)."
    if status is Status.CANCELED:
        return f"Request {uuid} was canceled; it has no response."
    if status in TERMINAL:
        return f"The response of request {uuid} was deleted."
    return f"Request {uuid} is {status}; it has no response yet."


class StatsHandler(BaseHandler):
    """`/stats`: counts per status and the queue's depth, for dashboards and the TUI."""

    async def get(self) -> None:
        stats = await self.store.stats()
        stats["waiters"] = self.store.waiters.count
        self.write_json(stats)


class HealthHandler(BaseHandler):
    """`/healthz`: 200 while the server can reach Redis, 503 otherwise; needs no token."""

    public = True

    async def get(self) -> None:
        if not await self.store.ping():
            raise StoreUnavailable("The store (Redis) did not answer PING.")
        self.write_json({"status": "ok"})


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        super().prepare()
        raise NotFound(f"No such resource: {self.request.path}")

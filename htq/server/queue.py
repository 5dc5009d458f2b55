"""`/`: queue a request (POST) and list requests (GET)."""

from __future__ import annotations

import hashlib
import json
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
    SentByHtq,
    UnsupportedMediaType,
)
from htq.masking import masked
from htq.models import (
    MARK_PREFIX,
    USER_AGENT,
    RequestSpec,
    Status,
    new_uuid,
    now_ms,
    parse_request,
)
from htq.outbound import Outbound, Refused
from htq.server.base import BaseHandler
from htq.store import LISTED_FIELDS, Idempotency, parse_cursor

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# JSON only: text/plain and form bodies are what a web page may send cross-site unasked.
_ACCEPTED_TYPES = ("application/json",)
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")

_AGENT = USER_AGENT.split("/", 1)[0].lower() + "/"  # any version's: "htq/"


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
        self._refused = self._refused or self._loop() or self._refusal(declared)
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
        delivery = spec.delivery
        urls = (
            ("url", spec.url),
            ("callback", delivery.callback),
            ("failure_callback", delivery.failure_callback),
        )
        for name, url in urls:
            try:
                if url is not None:
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

    def _loop(self) -> SentByHtq | None:
        """A `POST /` an htq worker sent (its User-Agent, or an `Htq-` header, which the worker
        sets on every retried attempt and callback over what a description says) is refused:
        a request that queues itself, through a proxy or another htq, could multiply."""
        marker = next(
            (name for name in self.request.headers if name.startswith(MARK_PREFIX)), None
        )  # HTTPHeaders writes names in one case: `htq-x` arrives as `Htq-X`
        if marker is None and self.request.headers.get("User-Agent", "").lower().startswith(_AGENT):
            marker = "User-Agent"
        if marker is None:
            return None
        return SentByHtq(
            f"htq does not queue requests sent by an htq worker (this one's {marker} says it "
            "is one): a request that queues requests could loop."
        )

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
        limit = self.query_number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT, whole=True)
        limit = int(limit or DEFAULT_LIMIT)
        try:
            cursor = parse_cursor(self.query("cursor"))
        except ValueError as exc:
            raise ClientError(
                f"`cursor` is not one this server handed out: {exc}.", "cursor"
            ) from None
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
        raw = self.query("fields")
        if not raw:
            return None
        fields = frozenset(name.strip() for name in raw.split(",") if name.strip())
        unknown = sorted(fields - LISTED_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(LISTED_FIELDS))
            raise ClientError(
                f"Unknown field(s) in `fields`: {', '.join(unknown)}. Use {allowed}.", "fields"
            )
        return fields | {"uuid"}

    def _status_filter(self) -> Status | None:
        raw = self.query("status")
        raw = "queued" if raw is None else raw
        if raw == "all":
            return None
        try:
            return Status(raw)
        except ValueError:
            names = ", ".join([*Status.__members__.values(), "all"])
            raise ClientError(f"`status` must be one of {names}, not {raw!r}.", "status") from None


def _only(item: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name in fields}

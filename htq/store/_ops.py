"""Every store operation, defined once: the commands it sends and how its replies are read.

An `Operation` is data: the sync runner (`Store`, worker threads) and the async one
(`AsyncStore`, the server) only send its commands in one round trip and hand the replies to
its `parse`. Replies are raw (hiredis): bytes, ints, lists, None; error replies are raised by
the runner before `parse` sees them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from htq.config import StoreConfig
from htq.models import RequestSpec, Status, now_ms, response_resource
from htq.store._keys import INDEXED, Keys, text
from htq.store._render import attempt_entry, attempts_of, render, summarize
from htq.store._scripts import (
    CALLED_BACK,
    CANCEL,
    CLAIM,
    COMPLETE,
    DELETE_RESPONSE,
    ENQUEUE,
    PAGE,
    PROMOTE,
    PURGE,
    PUT_BACK_CALLBACK,
    REAP_CALLBACKS,
    RELEASE,
    RENEW,
    RENEW_CALLBACKS,
    REQUEUE,
    REQUEUE_EXPIRED,
    RESCUE_CLAIMING,
    RETRY,
    TAKE_CALLBACK,
    UNTAKE,
    Script,
)
from htq.store._values import (
    Answer,
    CallbackJob,
    Claim,
    Enqueued,
    Idempotency,
    Operation,
    Page,
    Requeued,
)

#: The most a listing page holds (stored bytes); a page that would hold more ends early.
PAGE_BYTES = 4 * 1024 * 1024
# The hash fields a request resource is rendered from (see models.request_resource).
_RESOURCE_PARTS = (
    "status", "time", "request", "headers", "data", "replaced_by", "due", "attempts",
    "callback_result",
)  # fmt: skip
_ATTEMPT_PARTS = ("status", "attempts", "recorded", "claimed", "history", "summary")
# What a listing reads for each field it shows (`status` always: a request whose hash expired
# has none, and is skipped).
_LISTED_PARTS = {
    "timeout": "request",
    "url": "request",
    "method": "request",
    "id": "request",
    "time": "time",
    "headers": "headers",
    "data": "data",
    "result": "summary",
    "replaced_by": "replaced_by",
    "due": "due",
    "attempts": "attempts",
}
#: What `GET /?fields=` may pick from each listed request (`links` the server adds).
LISTED_FIELDS = frozenset({*_LISTED_PARTS, "status", "uuid", "links"})
_CURSOR = re.compile(r"[0-9]{1,18}")


class Operations:
    """The operations on one namespace."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.keys = Keys(config.prefix)

    # -- what the server asks --------------------------------------------------------------

    def enqueue(
        self, uuid: str, spec: RequestSpec, time_ms: int, idempotency: Idempotency | None = None
    ) -> Operation[Enqueued]:
        """Store a request and its queue entry (or its due time); with an `id`, cancel the
        earlier holder; with an idempotency key already used, return its request instead."""
        small, headers, data = spec.to_stored()
        args = [small, headers, data, time_ms, spec.id or "", self.config.ttl]
        args += [self.keys.request(""), spec.due or "", "1" if spec.delivery.has_callbacks else ""]
        keys = self.keys.script_keys(uuid)
        if idempotency is not None:
            keys.append(self.keys.idempotency(idempotency.key))
            args += [idempotency.fingerprint, int(idempotency.ttl * 1000)]
        channels = [self.keys.done_channel, self.keys.cancel_channel, uuid]
        command = ENQUEUE.command(keys, [*channels, *args])
        return Operation((command,), lambda r: _enqueued(uuid, r[0]))

    def get(self, uuid: str) -> Operation[dict[str, Any] | None]:
        command = ("HMGET", self.keys.request(uuid), *_RESOURCE_PARTS)
        return Operation((command,), lambda r: render(uuid, _fields(_RESOURCE_PARTS, r[0])))

    def status(self, uuid: str) -> Operation[Status | None]:
        return Operation((("HGET", self.keys.request(uuid), "status"),), lambda r: _status(r[0]))

    def statuses(self, uuids: Sequence[str]) -> Operation[list[Status | None]]:
        commands = tuple(("HGET", self.keys.request(uuid), "status") for uuid in uuids)
        return Operation(commands, lambda r: [_status(reply) for reply in r])

    def response(self, uuid: str) -> Operation[Answer]:
        command = ("HMGET", self.keys.request(uuid), "status", "response")
        return Operation((command,), lambda r: Answer(_status(r[0][0]), r[0][1]))

    def cancel(self, uuid: str) -> Operation[Status | None]:
        """Cancel; the status it had (None if unknown). Idempotent."""
        command = self._transition(CANCEL, uuid, now_ms(), self.config.ttl)
        return Operation((command,), lambda r: _status(r[0]))

    def delete_response(self, uuid: str) -> Operation[bool]:
        return Operation((self._transition(DELETE_RESPONSE, uuid),), lambda r: bool(r[0]))

    def ping(self) -> Operation[bool]:
        """Whether Redis answers (for `/healthz`)."""
        return Operation((("PING",),), lambda r: r[0] in (True, b"PONG", "PONG"))

    def stats(self) -> Operation[dict[str, Any]]:
        commands = (
            *(("ZCARD", self.keys.index(status)) for status in INDEXED),
            ("ZCARD", self.keys.all),
            ("HGETALL", self.keys.stats),
        )
        return Operation(commands, _stats)

    def page_entries(
        self, status: Status | None, limit: int, cursor: str | None
    ) -> Operation[list[tuple[str, int]]]:
        """Up to `limit + 1` (uuid, seq) of a listing, newest first: O(log n + limit)."""
        key = self.keys.index(status) if status else self.keys.all
        start = f"({int(cursor)}" if cursor else "+inf"
        command = ("ZRANGE", key, start, "-inf", "BYSCORE", "REV", "LIMIT", 0, limit + 1,
                   "WITHSCORES")  # fmt: skip
        return Operation((command,), lambda r: _pairs(r[0]))

    def page(
        self, entries: list[tuple[str, int]], limit: int, fields: frozenset[str] | None
    ) -> Operation[Page]:
        """The page of `entries` (from `page_entries`): only what `fields` shows (None: all),
        ending early rather than go over PAGE_BYTES."""
        shown = _LISTED_PARTS.keys() if fields is None else fields
        parts = ["status", *sorted({_LISTED_PARTS[f] for f in shown if f in _LISTED_PARTS})]
        keys = [self.keys.request(uuid) for uuid, _ in entries[:limit]]
        command = PAGE.command(keys, [PAGE_BYTES, *parts])
        return Operation((command,), lambda r: _page(entries, parts, r[0], limit))

    def purge(self, now: int, limit: int) -> Operation[int]:
        """Remove expired requests from every index; their hashes expire on their own."""
        keys = [self.keys.expiry, self.keys.all, *(self.keys.index(s) for s in INDEXED)]
        return Operation((PURGE.command(keys, [now, limit]),), lambda r: int(r[0]))

    def announce(self, servers: Sequence[dict[str, Any]], now: int, ttl: float) -> Operation[int]:
        """Say where a server listens (see htq.outbound.listening) until `ttl` seconds from
        `now`, renewed before then; announcements that were not renewed go."""
        until = now + int(ttl * 1000)
        members = [json.dumps(server, sort_keys=True) for server in servers]
        commands: tuple[tuple[Any, ...], ...] = (
            ("ZREMRANGEBYSCORE", self.keys.servers, "-inf", f"({now}"),
            ("ZADD", self.keys.servers, *(part for m in members for part in (until, m))),
        )
        return Operation(commands if members else commands[:1], lambda r: len(members))

    def withdraw(self, servers: Sequence[dict[str, Any]]) -> Operation[int]:
        """A stopping server's announcement goes at once (not when it expires)."""
        members = [json.dumps(server, sort_keys=True) for server in servers]
        command = ("ZREM", self.keys.servers, *members)
        return Operation((command,) if members else (), lambda r: int(r[0]) if r else 0)

    def servers(self, now: int) -> Operation[list[dict[str, Any]]]:
        """Where the live servers listen, as they announced it (the worker refuses them)."""
        command = ("ZRANGEBYSCORE", self.keys.servers, now, "+inf")
        return Operation((command,), lambda r: [json.loads(m) for m in r[0]])

    # -- what the worker asks --------------------------------------------------------------

    def take(self) -> Operation[str | None]:
        """Take the next uuid from the queue into `claiming`, without waiting."""
        command = ("LMOVE", self.keys.queue, self.keys.claiming, "RIGHT", "LEFT")
        return Operation((command,), lambda r: text(r[0]) or None)

    def claim(self, uuid: str, worker: str, lease: float) -> Operation[Claim | None]:
        """Mark a taken uuid pending with a lease and a new fencing token; None if not queued."""
        now = now_ms()
        command = self._transition(CLAIM, uuid, worker, now + int(lease * 1000), now)
        return Operation((command,), lambda r: _claimed(uuid, r[0]))

    def complete(self, claim: Claim, response: dict[str, Any]) -> Operation[bool]:
        """Store a result; False (and counted as fenced) if the claim is no longer held."""
        command = self._transition(
            COMPLETE,
            claim.uuid,
            claim.token,
            response["status"],
            # UTF-8, not \u escapes: a stored text body is no larger than the bytes received,
            # but for quotes, backslashes and control characters (see worker encode_body).
            json.dumps(response, ensure_ascii=False),
            response["time"],
            self.config.ttl,
            json.dumps(summarize(response)),
            # the first attempt is told by the summary; from the second, each is recorded
            json.dumps(attempt_entry(claim, response)) if claim.attempts > 1 else "",
        )
        return Operation((command,), lambda r: bool(r[0]))

    def retry(self, claim: Claim, response: dict[str, Any], due: int) -> Operation[bool]:
        """Record a failed attempt and wait until `due` for the next; False if not held."""
        entry = json.dumps(attempt_entry(claim, response))
        command = self._transition(RETRY, claim.uuid, claim.token, due, entry)
        return Operation((command,), lambda r: bool(r[0]))

    def requeue(self, uuid: str) -> Operation[Requeued]:
        """Queue a finished request again as a new attempt, holding its `id` again. Queued and
        pending ones, those a later request with their `id` replaced, and those whose `id`
        another live request holds, are left alone."""
        return Operation(
            (self._transition(REQUEUE, uuid, self.keys.request("")),),
            lambda r: Requeued(_status(r[0][0]), *(text(x) if x else None for x in r[0][1:])),
        )

    def attempts(self, uuid: str) -> Operation[list[dict[str, Any]] | None]:
        """Every attempt of a request, oldest first; None if unknown."""
        command = ("HMGET", self.keys.request(uuid), *_ATTEMPT_PARTS)
        return Operation((command,), lambda r: attempts_of(_fields(_ATTEMPT_PARTS, r[0])))

    def promote(self, now: int, limit: int) -> Operation[tuple[int, int | None]]:
        """Move requests due by `now` into the queue: how many, and the next due time."""
        keys = [self.keys.due, self.keys.queue]
        command = PROMOTE.command(keys, [now, limit, self.keys.request("")])
        return Operation((command,), lambda r: (int(r[0][0]), int(r[0][1]) if r[0][1] else None))

    def take_callback(self, uuid: str, lease: float) -> Operation[CallbackJob | None]:
        """Lease a uuid taken from `callbacks` (see `Store.wait_for_callback`) with a new token:
        what its callback sends; None if there is nothing to send."""
        keys = self.keys
        deadline = now_ms() + int(lease * 1000)
        command = TAKE_CALLBACK.command(
            [keys.request(uuid), keys.callbacks_taking, keys.callback_leases], [uuid, deadline]
        )
        return Operation((command,), lambda r: _callback_job(uuid, r[0]))

    def renew_callbacks(self, jobs: Sequence[CallbackJob], lease: float) -> Operation[list[bool]]:
        """Extend the leases of held callbacks (one script for all); False for each no longer
        held."""
        if not jobs:
            return Operation((), lambda r: [])
        deadline = now_ms() + int(lease * 1000)
        keys = [self.keys.callback_leases, *(self.keys.request(job.uuid) for job in jobs)]
        args = [deadline, *(part for job in jobs for part in (job.uuid, job.token))]
        command = RENEW_CALLBACKS.command(keys, args)
        return Operation((command,), lambda r: [bool(reply) for reply in r[0]])

    def callback_response(self, job: CallbackJob) -> Operation[bytes | None]:
        """The stored response a held callback sends; None if no longer held (or gone)."""
        req = self.keys.request(job.uuid)
        commands = (
            ("HMGET", req, "callback_token", "response"),
            ("ZSCORE", self.keys.callback_leases, job.uuid),
        )
        return Operation(commands, lambda r: _held_response(job, r))

    def called_back(self, job: CallbackJob, result: dict[str, Any] | None) -> Operation[bool]:
        """Settle a held callback, keeping `result` (None: there was nothing to send)."""
        outcome = json.dumps(result) if result is not None else ""
        command = CALLED_BACK.command(self._callback_keys(job.uuid), [job.uuid, job.token, outcome])
        return Operation((command,), lambda r: bool(r[0]))

    def put_back_callback(self, job: CallbackJob, due: int | None) -> Operation[bool]:
        """Hand a held callback back: taken next, or (with `due`, epoch ms) not before then."""
        keys = [*self._callback_keys(job.uuid), self.keys.callbacks]
        command = PUT_BACK_CALLBACK.command(keys, [job.uuid, job.token, due or ""])
        return Operation((command,), lambda r: bool(r[0]))

    def reap_callbacks(self, now: int, limit: int) -> Operation[tuple[int, int]]:
        """Callbacks whose lease ran out, and those stuck in `taking`, back into `callbacks`:
        how many of each."""
        k = self.keys
        keys = [k.callbacks, k.callback_leases, k.callbacks_taking, k.callbacks_taking_seen]
        command = REAP_CALLBACKS.command(keys, [now, limit])
        return Operation((command,), lambda r: (int(r[0][0]), int(r[0][1])))

    def _callback_keys(self, uuid: str) -> list[str]:
        return [self.keys.request(uuid), self.keys.callback_leases]

    def renew(self, claims: Sequence[Claim], lease: float) -> Operation[list[bool]]:
        """Extend leases; False for each claim no longer held (canceled or taken back)."""
        deadline = now_ms() + int(lease * 1000)
        commands = tuple(self._transition(RENEW, c.uuid, c.token, deadline) for c in claims)
        return Operation(commands, lambda r: [bool(reply) for reply in r])

    def release(self, claim: Claim) -> Operation[bool]:
        """Hand a held request back to the front of the queue (a worker shutting down)."""
        command = self._transition(RELEASE, claim.uuid, claim.token)
        return Operation((command,), lambda r: bool(r[0]))

    def expired(self, now: int, limit: int) -> Operation[list[str]]:
        """Uuids whose lease ran out by `now`."""
        command = ("ZRANGE", self.keys.leases, "-inf", now, "BYSCORE", "LIMIT", 0, limit)
        return Operation((command,), lambda r: [text(uuid) for uuid in r[0]])

    def requeue_expired(self, uuid: str, now: int, max_attempts: int) -> Operation[str]:
        """Queue again a request whose lease expired, or give up after `max_attempts`:
        'requeued', 'lost', 'held' (renewed meanwhile) or 'stale' (not pending any more)."""
        lost = response_resource(
            uuid,
            Status.ERROR,
            time_ms=now,
            elapsed_ms=0.0,
            message=f"The worker sending this request was lost {max_attempts} time(s); giving up.",
        )
        command = self._transition(
            REQUEUE_EXPIRED, uuid, now, max_attempts, self.config.ttl, json.dumps(lost),
            json.dumps(summarize(lost)),
        )  # fmt: skip
        return Operation((command,), lambda r: text(r[0]))

    def rescue_claiming(self) -> Operation[int]:
        """Uuids stuck in `claiming` (a worker died before claiming them) back to the queue."""
        keys = [self.keys.claiming, self.keys.claiming_seen, self.keys.queue]
        return Operation((RESCUE_CLAIMING.command(keys, []),), lambda r: int(r[0]))

    def untake(self, uuids: Sequence[str]) -> Operation[int]:
        """Put uuids taken but never claimed back where the queue is taken next (stopping)."""
        keys = [self.keys.claiming, self.keys.queue]
        return Operation((UNTAKE.command(keys, list(reversed(uuids))),), lambda r: int(r[0]))

    def lead_reaper(self, worker: str, period: float) -> Operation[bool]:
        """Elect one reaper per period across all workers (a short lock, never renewed)."""
        command = ("SET", self.keys.reaper, worker, "NX", "PX", int(period * 1000))
        return Operation((command,), lambda r: r[0] is not None)

    def _transition(self, script: Script, uuid: str, *args: Any) -> tuple[Any, ...]:
        keys = self.keys
        return script.command(
            keys.script_keys(uuid), [keys.done_channel, keys.cancel_channel, uuid, *args]
        )


def together(operations: Sequence[Operation[Any]]) -> Operation[list[Any]]:
    """Several operations in one round trip; the result of each, in order."""
    sizes = [len(op.commands) for op in operations]

    def parse(replies: list[Any]) -> list[Any]:
        results, start = [], 0
        for op, size in zip(operations, sizes, strict=True):
            results.append(op.parse(replies[start : start + size]))
            start += size
        return results

    return Operation(tuple(c for op in operations for c in op.commands), parse)


def parse_cursor(cursor: str | None) -> str | None:
    """A cursor is the sequence number of the last item seen; anything else is rejected.

    ASCII digits only: `str.isdigit` also takes "²", which `int` refuses.
    """
    if cursor is None or cursor == "":
        return None
    if not _CURSOR.fullmatch(cursor):
        raise ValueError(f"invalid cursor {cursor!r}")
    return cursor


def _enqueued(uuid: str, reply: Any) -> Enqueued:
    if isinstance(reply, list):  # an idempotency key already used: ['same'|'conflict', uuid]
        return Enqueued(uuid, None, text(reply[1]), text(reply[0]) == "conflict")
    return Enqueued(uuid, text(reply) or None)


def _fields(names: Sequence[str], values: list[Any]) -> dict[str, Any]:
    return dict(zip(names, values, strict=True))


def _status(reply: Any) -> Status | None:
    return Status(text(reply)) if reply else None


def _pairs(reply: Any) -> list[tuple[str, int]]:
    """ZRANGE WITHSCORES: (uuid, seq) pairs."""
    return [(text(member), int(float(score))) for member, score in _paired(reply)]


def _paired(reply: Any) -> list[tuple[Any, Any]]:
    """Pairs from a map or a scored range, in either protocol: RESP2 sends them flat, RESP3
    (redis-py 8's default) as a map or a list of pairs."""
    if isinstance(reply, dict):
        return list(reply.items())
    if reply and isinstance(reply[0], list):
        return [(member, score) for member, score in reply]
    return [(reply[n], reply[n + 1]) for n in range(0, len(reply), 2)]


def _page(entries: list[tuple[str, int]], parts: list[str], values: list[Any], limit: int) -> Page:
    """Render the rows read (maybe fewer than the entries: the page ended early)."""
    width = len(parts)
    read = len(values) // width
    rows = (
        render(uuid, dict(zip(parts, values[start : start + width], strict=True)))
        for (uuid, _), start in zip(entries, range(0, read * width, width), strict=False)
    )
    items = [item for item in rows if item is not None]
    more = read < min(len(entries), limit) or len(entries) > limit
    return Page(items, str(entries[read - 1][1]) if more and read else None)


def _stats(replies: list[Any]) -> dict[str, Any]:
    counts = {str(status): int(n) for status, n in zip(INDEXED, replies, strict=False)}
    counters = {text(name): int(count) for name, count in _paired(replies[len(INDEXED) + 1])}
    return {
        "counts": counts,
        "total": int(replies[len(INDEXED)]),
        "queue_depth": counts[Status.QUEUED],
        "in_flight": counts[Status.PENDING],
        "fenced": counters.get("fenced", 0),
        "retried": counters.get("retried", 0),
        "requeued": counters.get("requeued", 0),
        "lost": counters.get("lost", 0),
    }


def _callback_job(uuid: str, reply: Any) -> CallbackJob | None:
    """The CallbackJob a TAKE_CALLBACK script's reply describes; None if nothing to send.
    Nothing is decoded here: the worker settles one it cannot read (see `CallbackJob`)."""
    if not reply:
        return None
    token, status, small, summary, attempts = reply
    status, small, summary = ((v or b"").decode(errors="replace") for v in (status, small, summary))
    return CallbackJob(uuid, text(token), status, small, summary, int(attempts or 0))


def _held_response(job: CallbackJob, replies: list[Any]) -> bytes | None:
    (token, response), lease = replies
    held = token is not None and text(token) == job.token and lease is not None
    return response if held else None


def _claimed(uuid: str, reply: Any) -> Claim | None:
    """The Claim a CLAIM script's reply describes; None if the uuid was not queued."""
    if not reply:
        return None
    token, attempts, small, headers, data = reply
    return Claim(uuid, text(token), int(attempts), RequestSpec.from_stored(small, headers, data))

"""The non-blocking runner of the store's operations, for the Tornado server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import redis.asyncio as aredis

from htq.config import StoreConfig
from htq.models import RequestSpec, Status, now_ms
from htq.store._ops import Operations
from htq.store._scripts import missing
from htq.store._values import Answer, Enqueued, Idempotency, Operation, Page, Requeued
from htq.store._waiters import DoneWaiters
from htq.store._wire import AsyncWire, async_client

T = TypeVar("T")
log = logging.getLogger("htq.store")
_Batch = list[tuple[Operation[Any], "asyncio.Future[Any]"]]


class AsyncStore:
    """Runs operations without blocking: the operations of one event-loop turn share one
    pipelined round trip (under load many handlers enqueue at once, and one pipeline of N
    costs far less than N awaited calls; docs/benchmarks.md has the figures)."""

    def __init__(
        self,
        config: StoreConfig,
        *,
        redis_client: aredis.Redis | None = None,
        max_connections: int = 32,
    ) -> None:
        self.ops = Operations(config)
        self.config = config
        self.keys = self.ops.keys
        # For pub/sub (the waiters); operations go on the wire.
        self.redis: Any = redis_client or async_client(config, max_connections=max_connections)
        self.waiters = DoneWaiters(self)
        self._wire = AsyncWire(self.redis.connection_pool)
        self._batch: _Batch = []
        self._sending: set[asyncio.Task[None]] = set()
        self._outage = Outage()

    async def close(self) -> None:
        await self.waiters.close()
        await self._wire.close()
        await self.redis.aclose()

    def run(self, operation: Operation[T]) -> asyncio.Future[T]:
        """The operation's result, once the batch of this event-loop turn has its replies.

        A future, not a coroutine: one frame fewer for each call to go through and back.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((operation, future))
        return future

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: _Batch) -> None:
        commands = [command for operation, _ in batch for command in operation.commands]
        replies: list[Any]
        try:
            replies = await self._wire.execute(commands)
        except Exception as exc:  # Redis away: every caller gets the error
            replies = [exc] * len(commands)
            self._outage.failed(exc)
        else:
            self._outage.over()
            indexes, again = missing(commands, replies)
            if indexes:  # only these go again: the others ran, and their callers must know it
                try:
                    resent = await self._wire.execute(again)
                except Exception as exc:
                    resent = [exc] * len(again)
                for n, reply in zip(indexes, resent, strict=True):
                    replies[n] = reply
        start = 0
        for operation, future in batch:
            mine = replies[start : start + len(operation.commands)]
            start += len(operation.commands)
            if future.done():
                continue
            error = next((reply for reply in mine if isinstance(reply, Exception)), None)
            try:
                if error is not None:
                    raise error
                future.set_result(operation.parse(mine))
            except Exception as exc:
                future.set_exception(exc)

    async def enqueue(
        self, uuid: str, spec: RequestSpec, time_ms: int, idempotency: Idempotency | None = None
    ) -> Enqueued:
        """Store a request and its queue entry atomically; with an `id`, cancel the earlier one
        (one script: a storm of POSTs with one `id` never retries); with an idempotency key
        already used, nothing is stored (`existing` says which request it was)."""
        return await self.run(self.ops.enqueue(uuid, spec, time_ms, idempotency))

    async def requeue(self, uuid: str) -> Requeued:
        return await self.run(self.ops.requeue(uuid))

    async def attempts(self, uuid: str) -> list[dict[str, Any]] | None:
        return await self.run(self.ops.attempts(uuid))

    async def get(self, uuid: str) -> dict[str, Any] | None:
        return await self.run(self.ops.get(uuid))

    async def status(self, uuid: str) -> Status | None:
        return await self.run(self.ops.status(uuid))

    async def statuses(self, uuids: list[str]) -> list[Status | None]:
        return await self.run(self.ops.statuses(uuids))

    async def response(self, uuid: str) -> Answer:
        return await self.run(self.ops.response(uuid))

    async def cancel(self, uuid: str) -> Status | None:
        return await self.run(self.ops.cancel(uuid))

    async def delete_response(self, uuid: str) -> bool:
        return await self.run(self.ops.delete_response(uuid))

    async def list(
        self,
        status: Status | None,
        limit: int,
        cursor: str | None,
        fields: frozenset[str] | None = None,
    ) -> Page:
        """Newest first; O(log n + limit) whatever the size of the queue. Reads only what
        `fields` shows (None: all), and ends a page early rather than go over PAGE_BYTES."""
        entries = await self.run(self.ops.page_entries(status, limit, cursor))
        if not entries:
            return Page([], None)
        return await self.run(self.ops.page(entries, limit, fields))

    async def stats(self) -> dict[str, Any]:
        return await self.run(self.ops.stats())

    async def ping(self) -> bool:
        return await self.run(self.ops.ping())

    async def announce(self, servers: Sequence[dict[str, Any]], ttl: float) -> int:
        """Say where this server listens, for `ttl` seconds (workers refuse to send there)."""
        return await self.run(self.ops.announce(servers, now_ms(), ttl))

    async def withdraw(self, servers: Sequence[dict[str, Any]]) -> int:
        return await self.run(self.ops.withdraw(servers))

    async def purge(self) -> int:
        return await self.run(self.ops.purge(now_ms(), 1000))


class Outage:
    """Whether Redis is away, so that an outage is logged once as it starts and once as it
    ends, not once per call that fails meanwhile (each answered 503 by the server)."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("Redis unreachable (%s): calls fail until it is back", error)

    def over(self) -> None:
        if self.since is not None:
            log.warning("Redis is back after %.1f s", time.monotonic() - self.since)
            self.since = None

"""Waiting for requests to finish: any number of coroutines over one pub/sub connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from htq.models import TERMINAL
from htq.store._keys import text
from htq.store._wire import REDIS_DOWN

if TYPE_CHECKING:
    from htq.store._async import AsyncStore

log = logging.getLogger("htq.store")


class DoneWaiters:
    """Lets any number of coroutines wait for requests to finish over one pub/sub connection.

    A waiter registers before it checks the status, so a finish between the check and the
    wait is never missed. After a reconnect (messages may have been lost) and every
    `recheck` seconds, the statuses of all waited-for requests are read in one pipeline.
    """

    def __init__(self, store: AsyncStore, recheck: float = 5.0) -> None:
        self._store = store
        self._recheck = recheck
        self._futures: dict[str, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def count(self) -> int:
        return sum(len(f) for f in self._futures.values())

    async def wait(self, uuid: str, timeout: float | None) -> bool:
        """Wait until `uuid` is done; True if it is, False on timeout."""
        self._ensure_listening()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(uuid, set()).add(future)
        try:
            status = await self._store.status(uuid)
            if status is None or status in TERMINAL:
                return True
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiting = self._futures.get(uuid)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._futures[uuid]

    def _wake(self, uuid: str) -> None:
        for future in self._futures.get(uuid, ()):
            if not future.done():
                future.set_result(None)

    def _ensure_listening(self) -> None:
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        keys = self._store.keys
        while True:
            pubsub = self._store.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.done_channel)
                await self._recheck_all()
                last_check = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        self._wake(text(message["data"]))
                    if time.monotonic() - last_check >= self._recheck:
                        await self._recheck_all()
                        last_check = time.monotonic()
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN:
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.aclose()

    async def _recheck_all(self) -> None:
        uuids = list(self._futures)
        if not uuids:
            return
        for uuid, status in zip(uuids, await self._store.statuses(uuids), strict=True):
            if status is None or status in TERMINAL:
                self._wake(uuid)

    async def close(self) -> None:
        """Stop listening; cancels until the listener has ended.

        Once is not always enough: on Python 3.11, `asyncio.wait_for` (redis-py sends commands
        through it) swallows a cancel that lands just as its call completes, and the listener
        would go on forever, holding up the server's exit.
        """
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("The listener for finished requests had failed: %r", error)

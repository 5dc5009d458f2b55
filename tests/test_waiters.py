"""The server's waiters on finished requests: their pub/sub listener ends when the server does."""

from __future__ import annotations

import asyncio
import uuid

from htq.config import StoreConfig
from htq.store import AsyncStore


async def test_closing_ends_the_listener_whenever_it_comes(store_config: StoreConfig) -> None:
    """A SIGTERM just after a `GET /response/` (which starts the listener) once left `htq up`
    running forever: Python 3.11's `asyncio.wait_for`, inside redis-py's subscribe, swallowed
    the cancel. Close at each of the listener's first steps; each close must end."""
    for steps in range(12):
        store = AsyncStore(store_config)
        await store.redis.ping()  # an idle connection ready: the listener starts without waiting
        assert await store.waiters.wait(str(uuid.uuid4()), 1)  # unknown: nothing to wait for
        for _ in range(steps):
            await asyncio.sleep(0)
        closing = asyncio.ensure_future(store.close())
        done, _ = await asyncio.wait({closing}, timeout=5)
        assert done, f"close() still waits for the listener, closed after {steps} steps"

"""Queue many requests fast, writing exactly what the server's enqueue writes.

Each request goes through the real `Store.enqueue` (validated and shaped as the server does,
by tests/workers.py's `enqueue`), but the store's client is a stand-in whose script call joins
a pipeline: the same ENQUEUE script with the same keys and arguments, thousands per round trip.
"""

from __future__ import annotations

import time
from typing import Any

from htq.config import StoreConfig
from htq.store import ENQUEUE, Store
from tests.workers import enqueue

BATCH = 2000


class _Pipelined:
    """Stands in for the Redis client under `Store.enqueue`: EVALSHA joins a pipeline.

    Only what an enqueue without an `id` calls is here; anything else fails loudly.
    """

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe

    def evalsha(self, *args: Any) -> bytes:
        self._pipe.evalsha(*args)
        return b""  # the script's answer when it replaced nothing


def fill(config: StoreConfig, count: int, **fields: Any) -> tuple[list[str], float]:
    """Queue `count` requests described by `fields`; their uuids and the seconds it took."""
    store = Store(config)
    try:
        store.redis.script_load(ENQUEUE.source)
        pipe = store.redis.pipeline(transaction=False)
        batched = Store(config, client=_Pipelined(pipe))  # type: ignore[arg-type]
        uuids: list[str] = []
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            uuids += [enqueue(batched, **fields) for _ in range(min(BATCH, count - first))]
            replies = pipe.execute()
            if any(reply != b"" for reply in replies):
                raise RuntimeError(f"enqueue script answered {set(replies)}")
        return uuids, time.perf_counter() - started
    finally:
        store.close()


def same_shape(store: Store, filled: str, **fields: Any) -> bool:
    """True if a filled request has the fields a real `Store.enqueue` writes (and no others)."""
    real = enqueue(store, **fields)
    try:
        shape = [set(store.redis.hgetall(store.keys.request(u))) for u in (real, filled)]
        return shape[0] == shape[1]
    finally:
        store.cancel(real)

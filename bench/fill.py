"""Queue many requests fast, writing exactly what the server's enqueue writes.

Each request is the store's own enqueue operation (validated and shaped as the server does):
its commands join a pipeline, thousands per round trip, instead of one round trip each.
"""

from __future__ import annotations

import time
from typing import Any

from htq.config import StoreConfig
from htq.models import new_uuid, now_ms, validate_request
from htq.store import ENQUEUE, Store
from tests.support.store import enqueue

BATCH = 2000


def fill(config: StoreConfig, count: int, **fields: Any) -> tuple[list[str], float]:
    """Queue `count` requests described by `fields`; their uuids and the seconds it took."""
    store = Store(config)
    try:
        spec = validate_request(fields)
        store.redis.script_load(ENQUEUE.source)
        pipe = store.redis.pipeline(transaction=False)
        uuids: list[str] = []
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            for _ in range(min(BATCH, count - first)):
                uuid = new_uuid()
                for command in store.ops.enqueue(uuid, spec, now_ms()).commands:
                    pipe.execute_command(*command)
                uuids.append(uuid)
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

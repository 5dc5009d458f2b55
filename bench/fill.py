"""Queue many requests fast, writing exactly what the server's enqueue writes.

Each request is the store's own enqueue operation (validated and shaped as the server does):
its commands go out thousands per round trip, instead of one round trip each.
Scheduled requests (`due`) go through the same script with their due time, as `not_before`
gives it: into the due index, not the queue.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from htq.config import StoreConfig
from htq.models import RequestSpec, new_uuid, now_ms, validate_request
from htq.store import ENQUEUE, Operation, Store
from tests.support.store import enqueue

BATCH = 2000


def fill(
    config: StoreConfig,
    count: int,
    *,
    due: Callable[[int], int] | None = None,
    tag: str | None = None,
    **fields: Any,
) -> tuple[list[str], float]:
    """Queue `count` requests described by `fields`; their uuids and the seconds it took.

    `due(n)`: the n-th request's due time (epoch ms, ahead of now), as its `not_before`.
    `tag`: the n-th request's URL gets `?id=<tag><n>`, so the target records its arrival.
    """
    store = Store(config)
    try:
        # Validated once, with the first request's URL and due time; the others differ only
        # in those two, which replace them (checked by `same_shape`, and by the script).
        spec = validate_request(_fields(0, due, tag, fields))
        varies = due is not None or tag is not None
        store.redis.script_load(ENQUEUE.source)
        uuids: list[str] = []
        started = time.perf_counter()
        # A batch goes out (on the store's own wire: hiredis packs it) while the next is built,
        # so Redis's time and ours overlap.
        with ThreadPoolExecutor(1) as sender:
            sending: Future[None] | None = None
            for first in range(0, count, BATCH):
                commands: list[tuple[Any, ...]] = []
                for n in range(first, min(first + BATCH, count)):
                    uuid = new_uuid()
                    each = _vary(spec, n, due, tag, fields) if varies and n else spec
                    commands += store.ops.enqueue(uuid, each, now_ms()).commands
                    uuids.append(uuid)
                if sending is not None:
                    sending.result()  # in order: the batch before has been run
                sending = sender.submit(_send, store, commands)
            if sending is not None:
                sending.result()
        return uuids, time.perf_counter() - started
    finally:
        store.close()


def _send(store: Store, commands: list[tuple[Any, ...]]) -> None:
    replies = store.run(Operation(tuple(commands), list))
    if any(reply != b"" for reply in replies):
        raise RuntimeError(f"enqueue script answered {set(replies)}")


def _fields(
    n: int, due: Callable[[int], int] | None, tag: str | None, fields: dict[str, Any]
) -> dict[str, Any]:
    """The n-th request's description."""
    described = dict(fields)
    if tag is not None:
        described["url"] = _tagged(str(fields["url"]), tag, n)
    if due is not None:
        described["not_before"] = due(n)
    return described


def _vary(
    spec: RequestSpec,
    n: int,
    due: Callable[[int], int] | None,
    tag: str | None,
    fields: dict[str, Any],
) -> RequestSpec:
    changes: dict[str, Any] = {}
    if tag is not None:
        changes["url"] = _tagged(str(fields["url"]), tag, n)
    if due is not None:
        changes["due"] = due(n)
    return dataclasses.replace(spec, **changes)


def _tagged(url: str, tag: str, n: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}id={tag}{n}"


def same_shape(store: Store, filled: str, **fields: Any) -> bool:
    """True if a filled request has the fields a real `Store.enqueue` writes (and no others),
    and, scheduled, waits in the due index at its `due` as a real one does."""
    real = enqueue(store, **fields)
    try:
        keys = store.keys
        shape = [set(store.redis.hgetall(keys.request(u))) for u in (real, filled)]
        if shape[0] != shape[1]:
            return False
        for uuid in (real, filled):
            due = store.redis.hget(keys.request(uuid), "due")
            score = store.redis.zscore(keys.due, uuid)
            if (due is None) != (score is None) or (due is not None and int(due) != score):
                return False
        return True
    finally:
        store.cancel(real)

"""Helpers for worker tests: enqueue through the store, wait for outcomes.

Real `htq worker` processes come from tests/support/processes.py.
"""

from __future__ import annotations

import time
from typing import Any

from htq.models import TERMINAL, Status, new_uuid, now_ms, response_resource, validate_request
from htq.store import Store


def enqueue(store: Store, **fields: Any) -> str:
    """Queue a request as the server would (validated, then stored); returns its uuid."""
    spec = validate_request(fields)
    uuid = new_uuid()
    store.enqueue(uuid, spec, now_ms())
    return uuid


def wait_for_status(
    store: Store, uuid: str, statuses: frozenset[Status] = TERMINAL, timeout: float = 10.0
) -> Status | None:
    """The request's status once it is one of `statuses` (default: done); its last otherwise."""
    deadline = time.monotonic() + timeout
    status = store.status(uuid)
    while status not in statuses and time.monotonic() < deadline:
        time.sleep(0.02)
        status = store.status(uuid)
    return status


def attempts(store: Store, uuid: str) -> int:
    return int(store.redis.hget(store.keys.request(uuid), "attempts") or 0)


def delete_namespace(store: Store) -> None:
    """Remove only this test's keys (its own prefix), never anything else in that Redis."""
    pattern = f"{{{store.config.prefix}}}:*"
    keys = list(store.redis.scan_iter(match=pattern, count=1000))
    for start in range(0, len(keys), 500):
        store.redis.delete(*keys[start : start + 500])


SPEC_FIELDS = ["status", "time", "code", "reason", "elapsed", "uuid", "headers", "data"]


def done(store: Store, uuid: str, timeout: float = 10.0) -> Status | None:
    return wait_for_status(store, uuid, timeout=timeout)


def answer_of(store: Store, uuid: str) -> dict[str, Any]:
    """The stored response of a request that must end in `success`."""
    assert done(store, uuid) is Status.SUCCESS
    response = store.response(uuid).resource
    assert response is not None
    return response


def answer(uuid: str, status: Status = Status.SUCCESS) -> dict[str, Any]:
    """What a worker stores: a 200 OK for a success, else a failure whose message is "refused"."""
    if status is Status.SUCCESS:
        return response_resource(
            uuid, status, time_ms=now_ms(), elapsed_ms=1.0, code=200, reason="OK", headers={},
            data="ok",
        )  # fmt: skip
    return response_resource(uuid, status, time_ms=now_ms(), elapsed_ms=1.0, message="refused")

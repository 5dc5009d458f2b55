"""Test fixtures: a real Redis for the session and a fresh htq namespace for every test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from htq.config import StoreConfig
from htq.store import Store
from tests.redis_process import ValkeyProcess, external_redis_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The session's Redis: HTQ_TEST_REDIS_URL if set, else an embedded Valkey we start."""
    url = external_redis_url()
    if url:
        yield url
        return
    valkey = ValkeyProcess().start()
    try:
        yield valkey.url
    finally:
        valkey.close()


@pytest.fixture
def store_config(redis_url: str) -> StoreConfig:
    """A namespace of its own for each test, so no test flushes or sees another's keys."""
    return StoreConfig(redis_url=redis_url, prefix=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_config: StoreConfig) -> Iterator[Store]:
    store = Store(store_config)
    try:
        yield store
    finally:
        _delete_namespace(store)
        store.close()


def _delete_namespace(store: Store) -> None:
    """Remove only this test's keys (its own prefix), never anything else in that Redis."""
    pattern = f"{{{store.config.prefix}}}:*"
    keys = list(store.redis.scan_iter(match=pattern, count=1000))
    for start in range(0, len(keys), 500):
        store.redis.delete(*keys[start : start + 500])

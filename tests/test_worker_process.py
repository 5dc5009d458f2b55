"""`htq worker` as a real process: its output, kill -9, SIGTERM, and Redis going away."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from htq.config import StoreConfig
from htq.models import Status
from htq.store import Store
from tests.support.processes import HtqProcess, htq
from tests.support.processes import start_worker as start_htq_worker
from tests.support.redis_server import ValkeyProcess, free_port
from tests.support.store import attempts, enqueue, wait_for_status
from tests.support.target import Target

StartWorker = Callable[..., HtqProcess]


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


@pytest.fixture
def start_worker(store_config: StoreConfig) -> Iterator[StartWorker]:
    """Start `htq worker --debug` processes (waiting for their start line); all stopped at the end.

    `options` go on the command line as `--name value` (lease="2" gives `--lease 2`).
    """
    started: list[HtqProcess] = []

    def start(config: StoreConfig = store_config, threads: int = 1, **options: str) -> HtqProcess:
        extra = ["--debug"]
        for name, value in options.items():
            extra += [f"--{name.replace('_', '-')}", value]
        worker = start_htq_worker(config.redis_url, config.prefix, *extra, threads=threads)
        started.append(worker)
        line = worker.wait_for_line("Started", timeout=15)
        assert line == f"Started {threads} workers...", worker.lines
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def test_the_spec_lines(store: Store, target: Target, start_worker: StartWorker) -> None:
    worker = start_worker(threads=2)
    ok = enqueue(store, url=f"{target.url}/ip")
    assert wait_for_status(store, ok) is Status.SUCCESS
    assert worker.wait_for_line(f"[{ok}] sending request...")
    assert worker.wait_for_line(f"[{ok}] response received")

    failed = enqueue(store, url=f"http://127.0.0.1:{free_port()}/")
    assert wait_for_status(store, failed) is Status.ERROR
    assert worker.wait_for_line(f"[{failed}] error: Could not connect")

    slow = enqueue(store, url=f"{target.url}/delay/30")
    assert target.wait_for_request("/delay/30", 5) is not None
    store.cancel(slow)
    assert worker.wait_for_line(f"[{slow}] canceled")
    assert target.wait_for_delete("/delay/30", 5) is not None


def test_unreachable_redis_at_start_is_one_line(store_config: StoreConfig) -> None:
    port = free_port()
    redis = f"redis://127.0.0.1:{port}/0"
    result = htq("worker", "--redis", redis, "--prefix", store_config.prefix, timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"htq worker: cannot reach Redis at 127.0.0.1:{port} (")
    assert result.stderr.count("\n") == 1


def test_a_killed_workers_request_is_completed_by_another(
    store: Store, target: Target, start_worker: StartWorker
) -> None:
    first = start_worker(lease="2")
    uuid = enqueue(store, url=f"{target.url}/delay/1", timeout=10)
    assert target.wait_for_request("/delay/1", 5) is not None
    first.kill()
    start_worker(lease="2")
    assert wait_for_status(store, uuid, timeout=15) is Status.SUCCESS
    assert [r.path for r in target.requests] == ["/delay/1", "/delay/1"]
    assert attempts(store, uuid) == 2


def test_sigterm_lets_in_flight_requests_finish(
    store: Store, target: Target, start_worker: StartWorker
) -> None:
    worker = start_worker(grace="10")
    uuid = enqueue(store, url=f"{target.url}/delay/1")
    assert target.wait_for_request("/delay/1", 5) is not None
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert store.status(uuid) is Status.SUCCESS


def test_sigterm_hands_back_what_outlives_the_grace(
    store: Store, target: Target, start_worker: StartWorker
) -> None:
    worker = start_worker(grace="0.5")
    uuid = enqueue(store, url=f"{target.url}/delay/30")
    assert target.wait_for_request("/delay/30", 5) is not None
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert store.status(uuid) is Status.QUEUED
    assert target.wait_for_disconnect(5, "/delay/30") is not None
    assert target.deletes == []


def test_a_second_sigint_hands_back_at_once(
    store: Store, target: Target, start_worker: StartWorker
) -> None:
    worker = start_worker(grace="60")
    uuid = enqueue(store, url=f"{target.url}/delay/30")
    assert target.wait_for_request("/delay/30", 5) is not None
    worker.signal(signal.SIGINT)
    assert worker.wait_for_line("Stopping: 1 request(s) in flight")
    worker.signal(signal.SIGINT)
    assert worker.wait(15) == 0
    assert store.status(uuid) is Status.QUEUED


def test_the_worker_rides_out_a_redis_restart(
    store_config: StoreConfig, target: Target, start_worker: StartWorker
) -> None:
    valkey = ValkeyProcess().start()
    config = replace(store_config, redis_url=valkey.url)
    try:
        worker = start_worker(config=config, threads=2)
        valkey.stop()
        assert worker.wait_for_line("unreachable; retrying...", timeout=15), worker.lines
        time.sleep(1.5)  # several retries by every thread
        valkey.start()
        assert worker.wait_for_line("Redis is back", timeout=15), worker.lines
        assert worker.count("unreachable") == 1, worker.lines
        store = Store(config)
        try:
            uuid = enqueue(store, url=f"{target.url}/ip")
            assert wait_for_status(store, uuid) is Status.SUCCESS
        finally:
            store.close()
        assert worker.process.poll() is None
    finally:
        valkey.close()

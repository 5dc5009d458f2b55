"""Canceling a request a worker holds: interrupted at once, a DELETE to the target, one outcome."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from htq.config import WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from tests.support.logs import wait_for_record
from tests.support.store import done, enqueue, wait_for_status
from tests.support.target import Target

# -- cancellation ------------------------------------------------------------------------------


def test_cancel_interrupts_at_once_and_deletes_at_the_target(
    store: Store, target: Target, worker: Worker
) -> None:
    uuid = enqueue(store, url=f"{target.url}/delay/30", headers={"X-Token": "abc"})
    assert target.wait_for_request("/delay/30", 5) is not None
    canceled_at = time.monotonic()
    assert store.cancel(uuid) is Status.PENDING
    left_at = target.wait_for_disconnect(5, "/delay/30")
    assert left_at is not None and left_at - canceled_at < 1.0
    delete = target.wait_for_delete("/delay/30", 5)
    assert delete is not None and delete.headers["X-Token"] == "abc"
    assert store.status(uuid) is Status.CANCELED and store.response(uuid).resource is None
    # The same (only) thread takes the next request.
    after = enqueue(store, url=f"{target.url}/ip")
    assert done(store, after) is Status.SUCCESS
    assert store.status(uuid) is Status.CANCELED and store.response(uuid).resource is None


def test_cancel_interrupts_a_connect_that_hangs(
    store: Store, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="htq.worker")
    with contextlib.ExitStack() as stack:
        # A listener whose backlog is full leaves a new connection hanging in its connect.
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers = set()
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(server.getsockname())
            fillers.add(filler.getsockname()[1])
        port = server.getsockname()[1]
        uuid = enqueue(store, url=f"http://127.0.0.1:{port}/")
        assert wait_for_status(store, uuid, frozenset({Status.PENDING})) is Status.PENDING
        assert connecting(port, besides=fillers), "the worker never started its connect"
        canceled_at = time.time()
        store.cancel(uuid)
        record = wait_for_record(caplog, f"[{uuid}] canceled", timeout=5)
        assert record is not None and record.created - canceled_at < 1.0
    assert store.status(uuid) is Status.CANCELED and store.response(uuid).resource is None


def connecting(port: int, besides: set[int], timeout: float = 10) -> bool:
    """Whether a socket on this host, other than those on the ports `besides`, is waiting in its
    connect to 127.0.0.1:`port` (SYN_SENT, from /proc/net/tcp) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, state = (field.rsplit(":", 1)[-1] for field in line.split()[1:4])
            if state == "02" and int(remote, 16) == port and int(local, 16) not in besides:
                return True
        time.sleep(0.02)
    return False


def test_cancel_racing_completion_settles_one_way(
    store: Store, target: Target, worker: Worker
) -> None:
    # Whichever lands in Redis first wins. A cancel that finds the request pending is never
    # overwritten by a late result, and only then does the target get a DELETE; a cancel
    # that comes after the response was stored deletes the response.
    canceled: dict[str, Status | None] = {}  # path -> the status the cancel found
    uuids = []
    for attempt in range(10):
        path = f"/delay/{0.1 + attempt / 1000:g}"
        uuid = enqueue(store, url=f"{target.url}{path}")
        uuids.append(uuid)
        time.sleep(0.04 + attempt * 0.02)  # before, around and after the response arrives
        canceled[path] = before = store.cancel(uuid)
        assert before in (Status.QUEUED, Status.PENDING, Status.SUCCESS)
        if before is Status.PENDING:
            assert target.wait_for_delete(path, 5) is not None
        assert done(store, uuid) is Status.CANCELED
    last = enqueue(store, url=f"{target.url}/ip")  # the thread is free: late results were tried
    assert done(store, last) is Status.SUCCESS
    for uuid in uuids:
        assert store.status(uuid) is Status.CANCELED and store.response(uuid).resource is None
    deleted = {r.path for r in target.deletes}
    assert deleted == {path for path, before in canceled.items() if before is Status.PENDING}


def test_a_missed_cancel_message_is_caught_by_the_heartbeat(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    with Worker(replace(config, lease=1.0)):
        uuid = enqueue(store, url=f"{target.url}/delay/30")
        assert target.wait_for_request("/delay/30", 5) is not None
        # As if the cancel's pub/sub message were lost: the status changes, nobody is told.
        store.redis.hset(store.keys.request(uuid), "status", "canceled")
        assert target.wait_for_disconnect(5, "/delay/30") is not None
        assert target.wait_for_delete("/delay/30", 5) is not None
    assert store.response(uuid).resource is None


def test_a_claim_taken_back_is_dropped_without_a_delete(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    with Worker(replace(config, lease=1.0)):
        uuid = enqueue(store, url=f"{target.url}/delay/30")
        assert target.wait_for_request("/delay/30", 5) is not None
        # As if the reaper had handed it to another worker: the fencing token moves on.
        store.redis.hincrby(store.keys.request(uuid), "token", 1)
        assert target.wait_for_disconnect(5, "/delay/30") is not None
    assert target.deletes == []
    assert store.status(uuid) is Status.PENDING and store.response(uuid).resource is None

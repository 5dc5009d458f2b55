"""Leases, taking ahead of need, and stopping: nothing sent twice while its worker lives, nothing
left behind when it stops."""

from __future__ import annotations

from dataclasses import replace

from htq.config import WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from htq.worker._sender import Ready
from tests.support.store import attempts, done, enqueue, wait_for_status
from tests.support.target import Target

# -- leases and shutdown -------------------------------------------------------------------------


def test_a_long_request_is_not_redelivered_while_its_worker_lives(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    with Worker(replace(config, threads=2, lease=1.0)):
        uuid = enqueue(store, url=f"{target.url}/delay/2.5", timeout=10)
        assert done(store, uuid) is Status.SUCCESS
    assert [r.path for r in target.requests] == ["/delay/2.5"]
    assert attempts(store, uuid) == 1


def test_stop_hands_back_what_outlives_the_grace(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    worker = Worker(config).start()
    try:
        uuid = enqueue(store, url=f"{target.url}/delay/30")
        assert target.wait_for_request("/delay/30", 5) is not None
    finally:
        worker.stop(grace=0.2)
    assert store.status(uuid) is Status.QUEUED
    assert attempts(store, uuid) == 0
    assert target.deletes == []


def test_what_was_taken_ahead_goes_back_to_the_queue(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    # One thread: as it claims a request to send, it takes the next one ahead of need in the
    # same round trip.
    uuids = [enqueue(store, url=f"{target.url}/delay/1.{n}") for n in range(3)]
    worker = Worker(config).start()
    try:
        assert target.wait_for_request("/delay/1.0", 5) is not None
        assert store.redis.lrange(store.keys.claiming, 0, -1) == [uuids[1].encode()]
    finally:
        worker.stop(grace=5)
    assert store.status(uuids[0]) is Status.SUCCESS
    assert store.redis.llen(store.keys.claiming) == 0
    assert [store.wait_for_work(0.1) for _ in range(3)] == [*uuids[1:], None]
    assert [attempts(store, u) for u in uuids[1:]] == [0, 0]
    assert [r.path for r in target.requests] == ["/delay/1.0"]


def test_a_uuid_taken_ahead_is_refused_while_a_thread_waits_on_the_queue() -> None:
    # Kept locally, it would wait for a busy thread while the idle one waits on Redis.
    ready = Ready(limit=2)
    assert ready.pop(or_wait=True) is None  # an idle thread, about to wait on the queue
    assert not ready.offer("a"), "goes back to the queue, where the waiting thread gets it"
    ready.done_waiting()
    assert ready.offer("a") and ready.offer("b") and not ready.has_room()
    assert [ready.pop(), ready.drain()] == ["a", ["b"]]


def test_an_idle_thread_takes_a_new_request_while_another_is_busy(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    with Worker(replace(config, threads=2)):
        slow = enqueue(store, url=f"{target.url}/delay/3")
        assert wait_for_status(store, slow, frozenset({Status.PENDING}), 5) is Status.PENDING
        fast = enqueue(store, url=f"{target.url}/ip")
        assert done(store, fast, timeout=1.0) is Status.SUCCESS
        assert store.status(slow) is Status.PENDING

"""The callback transitions against real Redis: take with a lease, renew, settle (fenced), put
back now or later, and the reaper's rescue of lost and stuck callbacks."""

from __future__ import annotations

import json
from typing import Any

from htq.models import Status, now_ms
from htq.store import CallbackJob, Store
from tests.support.store import answer, enqueue

URL = "http://127.0.0.1:9/"
CALLBACK = "http://127.0.0.1:1/cb"


def finished(store: Store, **fields: object) -> str:
    """A request with a callback, sent and answered: its uuid is in the callback list."""
    uuid = enqueue(store, url=URL, callback=CALLBACK, **fields)
    assert store.wait_for_work(1) == uuid
    claim = store.claim(uuid, "w", 30)
    assert claim is not None and store.complete(claim, answer(uuid))
    return uuid


def taken(store: Store, uuid: str, lease: float = 30) -> CallbackJob:
    assert store.wait_for_callback(1) == uuid
    job = store.take_callback(uuid, lease)
    assert job is not None
    return job


def lease_of(store: Store, uuid: str) -> float | None:
    score = store.redis.zscore(store.keys.callback_leases, uuid)
    return None if score is None else float(score)


def listed(store: Store) -> list[str]:
    return [u.decode() for u in store.redis.lrange(store.keys.callbacks, 0, -1)]


def result_of(store: Store, uuid: str) -> object:
    return (store.get(uuid) or {}).get("callback_result")


def finished_with(store: Store, response: dict[str, Any]) -> str:
    uuid = enqueue(store, url=URL, callback=CALLBACK)
    assert store.wait_for_work(1) == uuid
    claim = store.claim(uuid, "w", 30)
    assert claim is not None and store.complete(claim, {**response, "uuid": uuid})
    return uuid


def test_a_taken_callback_is_leased_with_what_picks_its_url(store: Store) -> None:
    uuid = finished(store)
    job = taken(store, uuid, lease=30)
    assert job.status == Status.SUCCESS and json.loads(job.request)["callback"] == CALLBACK
    assert json.loads(job.summary)["code"] == 200 and job.attempts == 1
    deadline = lease_of(store, uuid)
    assert deadline is not None and 0 < deadline - now_ms() <= 30_000
    assert store.redis.llen(store.keys.callbacks_taking) == 0, "out of `taking` once leased"
    assert store.wait_for_callback(0.1) is None


def test_settling_keeps_the_outcome_and_only_the_holder_may(store: Store) -> None:
    uuid = finished(store)
    first = taken(store, uuid)
    store.redis.rpush(store.keys.callbacks, uuid)  # listed again (its lease ran out, say)
    second = taken(store, uuid)
    assert second.token != first.token
    assert not store.called_back(first, {"url": CALLBACK, "attempts": 1, "code": 200})
    assert result_of(store, uuid) is None, "a stale holder is fenced"
    outcome = {"url": CALLBACK, "attempts": 1, "code": 204}
    assert store.called_back(second, outcome)
    assert result_of(store, uuid) == outcome and lease_of(store, uuid) is None
    assert store.called_back(second, outcome), "sent again (its answer lost): the same answer"
    assert not store.called_back(second, {**outcome, "code": 500}), "settled already"
    assert result_of(store, uuid) == outcome


def test_nothing_to_send_settles_without_an_outcome(store: Store) -> None:
    uuid = finished(store)
    job = taken(store, uuid)
    assert store.called_back(job, None)
    assert lease_of(store, uuid) is None and result_of(store, uuid) is None


def test_a_requeued_or_expired_request_has_nothing_to_send(store: Store) -> None:
    uuid, gone = finished(store), finished(store)
    assert store.requeue(uuid).done  # queued again: no response; its next end calls back
    assert store.wait_for_callback(1) == uuid
    assert store.take_callback(uuid, 30) is None and lease_of(store, uuid) is None
    store.redis.delete(store.keys.request(gone))
    assert store.wait_for_callback(1) == gone and store.take_callback(gone, 30) is None
    assert not store.redis.exists(store.keys.request(gone)), "not made again by the take"


def test_the_response_is_read_only_by_the_sender_and_only_while_held(store: Store) -> None:
    """A take reads a few hundred bytes whatever the response's size; the body is read when
    the callback is sent, by its holder only."""
    big = {**answer(""), "data": "x" * 500_000}
    uuid = finished_with(store, big)
    job = taken(store, uuid)
    assert len(job.request) + len(job.summary) < 1000
    sent = store.callback_response(job)
    assert sent is not None and json.loads(sent)["data"] == big["data"]
    assert store.put_back_callback(job)
    assert store.callback_response(job) is None, "no longer held"


def test_a_stored_request_htq_cannot_read_is_still_taken(store: Store) -> None:
    """Written by another htq, say: the take leases it, so the worker can settle it."""
    uuid = finished(store)
    store.redis.hset(store.keys.request(uuid), "request", "{not json")
    job = taken(store, uuid)
    assert job.request == "{not json" and lease_of(store, uuid) is not None


def test_renewing_extends_only_held_leases(store: Store) -> None:
    uuid, other = finished(store), finished(store)
    job, settled = taken(store, uuid, lease=1), taken(store, other, lease=1)
    assert store.called_back(settled, None)
    assert store.renew_callbacks([job, settled], 60) == [True, False]
    deadline = lease_of(store, uuid)
    assert deadline is not None and deadline - now_ms() > 30_000
    assert lease_of(store, other) is None, "a settled one is not leased again"
    assert store.renew_callbacks([], 60) == []


def test_put_back_now_is_taken_next(store: Store) -> None:
    uuid, later = finished(store), finished(store)
    job = taken(store, uuid)
    assert store.put_back_callback(job)
    assert listed(store) == [later, uuid], "at the end taken next"
    assert lease_of(store, uuid) is None
    assert not store.called_back(job, {"url": CALLBACK, "attempts": 1}), "no longer held"
    assert not store.put_back_callback(job), "once"


def test_put_back_until_a_due_time_waits_for_the_reaper(store: Store) -> None:
    uuid = finished(store)
    job = taken(store, uuid)
    due = now_ms() + 60_000
    assert store.put_back_callback(job, due)
    assert lease_of(store, uuid) == due and listed(store) == []
    assert not store.renew_callbacks([job], 30)[0], "its holder let it go"
    assert store.reap_callbacks() == (0, 0), "not due yet"
    assert store.run(store.ops.reap_callbacks(due, 100)) == (1, 0)
    assert listed(store) == [uuid] and lease_of(store, uuid) is None
    again = taken(store, uuid)
    assert again.token != job.token and store.called_back(again, None)


def test_the_reaper_puts_back_a_lost_workers_callbacks(store: Store) -> None:
    lost, held = finished(store), finished(store)
    old = taken(store, lost, lease=0.001)
    taken(store, held, lease=60)
    waiting = finished(store)
    assert store.run(store.ops.reap_callbacks(now_ms() + 10, 100)) == (1, 0)
    assert listed(store) == [lost, waiting], "at the end of the line: the waiting go first"
    assert lease_of(store, held) is not None
    assert not store.called_back(old, {"url": CALLBACK}), "the lost holder is fenced"
    assert taken(store, waiting).uuid == waiting
    assert taken(store, lost).token != old.token


def test_a_callback_stuck_in_taking_is_rescued_after_two_looks(store: Store) -> None:
    uuid = finished(store)
    assert store.wait_for_callback(1) == uuid  # taken, then its worker died
    assert store.reap_callbacks() == (0, 0), "one look is not enough"
    assert store.reap_callbacks() == (0, 1)
    assert listed(store) == [uuid]
    assert store.take_callback(uuid, 30) is None, "a late take of a rescued one is refused"
    assert taken(store, uuid).uuid == uuid


def test_an_idle_namespace_reaps_nothing(store: Store) -> None:
    assert store.reap_callbacks() == (0, 0) and store.reap_callbacks() == (0, 0)
    assert store.wait_for_callback(0.1) is None


def test_every_callback_script_touches_one_hash_tag(store: Store) -> None:
    uuid = finished(store)
    job = taken(store, uuid)
    ops = store.ops
    operations = [
        ops.take_callback(uuid, 30),
        ops.renew_callbacks([job, job], 30),
        ops.callback_response(job),
        ops.called_back(job, None),
        ops.put_back_callback(job, None),
        ops.put_back_callback(job, now_ms()),
        ops.reap_callbacks(now_ms(), 100),
    ]
    tag = f"{{{store.config.prefix}}}:"
    for operation in operations:
        for command in operation.commands:
            keys = command[3 : 3 + int(command[2])] if command[0] == "EVALSHA" else command[1:2]
            assert keys and all(str(key).startswith(tag) for key in keys), command


def test_a_wait_for_a_busy_host_goes_to_the_end_of_the_line(store: Store) -> None:
    """A callback put back until its host is free rejoins behind those already waiting: a busy
    host's callbacks never jump the queue of every other host's."""
    busy = finished(store)
    job = taken(store, busy)
    assert store.put_back_callback(job, now_ms() - 1)
    waiting = finished(store)
    assert store.run(store.ops.reap_callbacks(now_ms(), 100)) == (1, 0)
    assert store.wait_for_callback(1) == waiting, "the busy host's callback went first"

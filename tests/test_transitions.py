"""Every transition script, called through the store on a real Redis: what it changes, and
what it refuses (a stale fencing token, a request in the wrong status)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from htq.config import StoreConfig
from htq.models import Status, new_uuid, now_ms, validate_request
from htq.store import Claim, Idempotency, Store
from tests.support.store import answer, delete_namespace, enqueue

URL = "http://127.0.0.1:1/"


def claimed(store: Store, uuid: str | None = None, lease: float = 30) -> Claim:
    uuid = uuid or enqueue(store, url=URL)
    assert store.wait_for_work(1) == uuid
    claim = store.claim(uuid, "w", lease)
    assert claim is not None
    return claim


def field(store: Store, uuid: str, name: str) -> str | None:
    value = store.redis.hget(store.keys.request(uuid), name)
    return value.decode() if value is not None else None


def indexed(store: Store, uuid: str) -> list[str]:
    """The statuses whose index lists `uuid`."""
    return [s for s in Status if store.redis.zscore(store.keys.index(s), uuid) is not None]


@pytest.fixture
def channel(store: Store) -> Iterator[list[str]]:
    """Messages on the done and cancel channels, as `<channel>:<uuid>`."""
    seen: list[str] = []
    pubsub = store.redis.pubsub()
    pubsub.subscribe(store.keys.done_channel, store.keys.cancel_channel)
    # Subscribed once Redis confirms both: a message published before then would be missed.
    confirmed = 0
    deadline = time.monotonic() + 10
    while confirmed < 2:
        assert time.monotonic() < deadline, "Redis did not confirm the subscriptions"
        message = pubsub.get_message(timeout=1)
        confirmed += bool(message and message["type"] == "subscribe")
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.05)
            if message and message["type"] == "message":
                name = "done" if message["channel"].endswith(b":done") else "cancel"
                seen.append(f"{name}:{message['data'].decode()}")

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(2)
    pubsub.close()


def settle(seen: list[str], count: int) -> list[str]:
    deadline = time.monotonic() + 2
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return seen


def test_claim_makes_a_taken_request_pending_with_a_lease_and_a_token(store: Store) -> None:
    claim = claimed(store)
    assert (claim.token, claim.attempts, claim.spec.url) == ("1", 1, URL)
    assert indexed(store, claim.uuid) == [Status.PENDING]
    assert store.redis.zscore(store.keys.leases, claim.uuid) > now_ms()
    assert store.redis.llen(store.keys.claiming) == 0
    assert store.claim(claim.uuid, "other", 30) is None, "a pending request is not claimed twice"


def test_complete_stores_the_result_and_finishes(store: Store, channel: list[str]) -> None:
    claim = claimed(store)
    result = answer(claim.uuid)
    assert store.complete(claim, result)
    assert store.status(claim.uuid) is Status.SUCCESS and indexed(store, claim.uuid) == ["success"]
    assert store.response(claim.uuid).resource == result
    assert store.redis.zscore(store.keys.leases, claim.uuid) is None
    assert 0 < store.redis.pttl(store.keys.request(claim.uuid)) <= store.config.ttl * 1000
    assert store.redis.zscore(store.keys.expiry, claim.uuid) is not None
    assert settle(channel, 1) == [f"done:{claim.uuid}"]


def test_a_stale_token_is_fenced(store: Store) -> None:
    claim = claimed(store)
    stale = Claim(claim.uuid, "0", claim.attempts, claim.spec)
    assert not store.complete(stale, answer(claim.uuid))
    assert not store.renew([stale], 30)[0] and not store.release(stale)
    assert store.status(claim.uuid) is Status.PENDING and store.stats()["fenced"] == 1


@pytest.mark.parametrize("stage", ["queued", "pending", "success", "error"])
def test_cancel_at_each_stage(store: Store, channel: list[str], stage: str) -> None:
    if stage == "queued":
        uuid = enqueue(store, url=URL)
    else:
        claim = claimed(store)
        uuid = claim.uuid
        if stage != "pending":
            assert store.complete(claim, answer(uuid, Status(stage)))
    assert store.cancel(uuid) is Status(stage)
    assert store.status(uuid) is Status.CANCELED and indexed(store, uuid) == ["canceled"]
    assert store.response(uuid).raw is None and field(store, uuid, "summary") is None
    expected = [f"done:{uuid}"] if stage in ("queued", "pending") else [f"done:{uuid}"] * 2
    if stage == "pending":
        expected = [f"done:{uuid}", f"cancel:{uuid}"]
        assert field(store, uuid, "token") == "2", "the holder's token is stale now"
    assert sorted(settle(channel, len(expected))) == sorted(expected)
    assert store.cancel(uuid) is Status.CANCELED, "idempotent"
    assert store.cancel("00000000-0000-0000-0000-000000000000") is None


def test_renew_extends_only_a_held_lease(store: Store) -> None:
    claim = claimed(store, lease=1)
    before = store.redis.zscore(store.keys.leases, claim.uuid)
    assert store.renew([claim], 60) == [True]
    assert store.redis.zscore(store.keys.leases, claim.uuid) > before + 30_000
    store.cancel(claim.uuid)
    assert store.renew([claim], 60) == [False]
    assert store.redis.zscore(store.keys.leases, claim.uuid) is None


def test_release_hands_a_request_back_to_be_taken_next(store: Store) -> None:
    claim = claimed(store)
    later = enqueue(store, url=URL)
    assert store.release(claim)
    assert store.status(claim.uuid) is Status.QUEUED and field(store, claim.uuid, "attempts") == "0"
    assert store.wait_for_work(1) == claim.uuid, "before the one queued after it"
    again = store.claim(claim.uuid, "w", 30)
    assert again is not None and again.token == "3" and store.wait_for_work(1) == later


def test_reap_requeues_an_expired_lease_then_gives_up(store: Store) -> None:
    claim = claimed(store, lease=0.01)
    time.sleep(0.05)
    assert store.reap(max_attempts=2)["requeued"] == 1
    assert store.status(claim.uuid) is Status.QUEUED and store.stats()["requeued"] == 1
    assert not store.complete(claim, answer(claim.uuid)), "the dead worker's result is fenced"
    second = claimed(store, claim.uuid, lease=0.01)
    assert second.attempts == 2
    time.sleep(0.05)
    assert store.reap(max_attempts=2)["lost"] == 1
    assert store.status(claim.uuid) is Status.ERROR and store.stats()["lost"] == 1
    resource = store.response(claim.uuid).resource
    assert resource is not None and "lost 2 time(s)" in resource["message"]


def test_reap_leaves_a_renewed_lease_alone(store: Store) -> None:
    claim = claimed(store, lease=60)
    assert store.reap(max_attempts=3) == {"requeued": 0, "lost": 0, "rescued": 0, "purged": 0}
    assert store.status(claim.uuid) is Status.PENDING


def test_a_taken_uuid_nobody_claims_is_rescued_after_two_looks(store: Store) -> None:
    uuid = enqueue(store, url=URL)
    assert store.wait_for_work(1) == uuid  # taken, then its worker died
    assert store.reap(max_attempts=3)["rescued"] == 0, "one look is not enough"
    assert store.reap(max_attempts=3)["rescued"] == 1
    assert store.wait_for_work(1) == uuid


def test_purge_drops_expired_requests_from_every_index(store_config: StoreConfig) -> None:
    store = Store(StoreConfig(store_config.redis_url, store_config.prefix, ttl=1))
    try:
        claim = claimed(store)
        assert store.complete(claim, answer(claim.uuid))
        assert store.purge() == 0, "not expired yet"
        assert store.purge(now_ms() + 2000) == 1
        assert indexed(store, claim.uuid) == []
        assert store.redis.zcard(store.keys.all) == 0
    finally:
        delete_namespace(store)
        store.close()


def test_delete_response_keeps_the_status(store: Store) -> None:
    claim = claimed(store)
    store.complete(claim, answer(claim.uuid))
    assert store.run(store.ops.delete_response(claim.uuid))
    assert store.status(claim.uuid) is Status.SUCCESS and store.response(claim.uuid).raw is None
    summary = json.loads(field(store, claim.uuid, "summary") or "{}")
    assert summary["deleted"] is True and summary["code"] == 200, "listings say it is gone"
    assert not store.run(store.ops.delete_response(claim.uuid))


# -- delivery: scheduling, retries, requeue, callbacks, idempotency ----------------------------


def test_enqueue_with_a_due_time_waits_in_the_due_index(store: Store) -> None:
    due = now_ms() + 60_000
    uuid = enqueue(store, url=URL, not_before=due)
    assert store.redis.llen(store.keys.queue) == 0
    assert store.redis.zscore(store.keys.due, uuid) == due and field(store, uuid, "due") == str(due)
    assert indexed(store, uuid) == ["queued"]
    assert store.promote(now_ms()) == (0, due), "not before its time"
    assert store.promote(due) == (1, None)
    assert store.wait_for_work(1) == uuid and field(store, uuid, "due") is None


def test_promote_queues_each_due_request_once_however_many_run_it(store: Store) -> None:
    due = now_ms() + 200
    uuids = {enqueue(store, url=URL, not_before=due) for _ in range(300)}
    moved: list[int] = []
    time.sleep(0.25)
    threads = [
        threading.Thread(target=lambda: moved.append(store.promote(limit=50)[0])) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while (more := store.promote(limit=50)[0]) > 0:
        moved.append(more)
    queued = [v.decode() for v in store.redis.lrange(store.keys.queue, 0, -1)]
    assert sum(moved) == 300 and sorted(queued) == sorted(uuids)


def test_promote_queues_in_due_order_behind_what_was_queued_before(store: Store) -> None:
    now = now_ms()
    later = enqueue(store, url=URL, not_before=now + 2000)
    sooner = enqueue(store, url=URL, not_before=now + 1000)
    waiting = enqueue(store, url=URL)
    assert store.promote(now + 1500) == (1, now + 2000)
    assert store.promote(now + 2500) == (1, None)
    taken = [store.wait_for_work(1) for _ in range(3)]
    assert taken == [waiting, sooner, later], "first in, first out, by when each was due"


def test_promote_skips_a_request_canceled_meanwhile(store: Store) -> None:
    uuid = enqueue(store, url=URL, not_before=now_ms() + 60_000)
    assert store.cancel(uuid) is Status.QUEUED
    assert store.redis.zscore(store.keys.due, uuid) is None and field(store, uuid, "due") is None
    assert store.promote(now_ms() + 120_000) == (0, None)


def test_a_canceled_retry_is_never_claimed_again(store: Store) -> None:
    """Canceled in its backoff (due, or promoted and waiting in the queue) or during an attempt
    (its retry fenced), a request is never claimed again, even by a claim sent twice."""
    in_backoff = claimed(store)
    assert store.retry(in_backoff, answer(in_backoff.uuid, Status.ERROR), now_ms())
    assert store.cancel(in_backoff.uuid) is Status.QUEUED
    assert store.promote() == (0, None)
    promoted = claimed(store)
    assert store.retry(promoted, answer(promoted.uuid, Status.ERROR), now_ms())
    assert store.promote() == (1, None)
    assert store.cancel(promoted.uuid) is Status.QUEUED
    assert store.wait_for_work(1) == promoted.uuid, "still listed in the queue..."
    assert store.claim(promoted.uuid, "w", 30) is None, "...but never claimed"
    in_attempt = claimed(store)
    assert store.cancel(in_attempt.uuid) is Status.PENDING
    assert not store.retry(in_attempt, answer(in_attempt.uuid, Status.ERROR), now_ms())
    assert store.promote() == (0, None) and store.redis.llen(store.keys.queue) == 0
    assert store.claim(in_attempt.uuid, "w", 30) is None, "the same claim, sent again"
    for each in (in_backoff, promoted, in_attempt):
        assert store.status(each.uuid) is Status.CANCELED and indexed(store, each.uuid) == [
            "canceled"
        ]


def test_retry_records_the_attempt_and_waits(store: Store) -> None:
    claim = claimed(store)
    due = now_ms() + 5_000
    assert store.retry(claim, answer(claim.uuid, Status.ERROR), due)
    assert store.status(claim.uuid) is Status.QUEUED and indexed(store, claim.uuid) == ["queued"]
    assert store.redis.zscore(store.keys.due, claim.uuid) == due
    assert store.redis.zscore(store.keys.leases, claim.uuid) is None
    (first,) = store.attempts(claim.uuid) or []
    assert first["attempt"] == 1 and first["outcome"] == "error" and first["message"] == "refused"
    assert not store.complete(claim, answer(claim.uuid)), "the token moved on: fenced"
    assert store.stats()["retried"] == 1 and store.stats()["fenced"] == 1


def test_the_second_attempts_completion_is_recorded(store: Store) -> None:
    claim = claimed(store)
    assert store.retry(claim, answer(claim.uuid, Status.TIMEOUT), now_ms())
    assert store.promote() == (1, None)
    second = claimed(store, claim.uuid)
    assert second.attempts == 2
    assert store.complete(second, answer(claim.uuid))
    history = store.attempts(claim.uuid) or []
    assert [(a["attempt"], a["outcome"]) for a in history] == [(1, "timeout"), (2, "success")]
    assert field(store, claim.uuid, "recorded") == "2"


def test_requeue_queues_a_finished_request_again(store: Store) -> None:
    claim = claimed(store)
    assert store.complete(claim, answer(claim.uuid))
    assert store.redis.ttl(store.keys.request(claim.uuid)) > 0
    assert store.requeue(claim.uuid).status is Status.SUCCESS
    assert store.status(claim.uuid) is Status.QUEUED and indexed(store, claim.uuid) == ["queued"]
    assert store.redis.ttl(store.keys.request(claim.uuid)) == -1, "no longer expires"
    assert store.redis.zscore(store.keys.expiry, claim.uuid) is None
    assert store.response(claim.uuid).raw is None
    (first,) = store.attempts(claim.uuid) or []
    assert first["attempt"] == 1 and first["code"] == 200
    again = store.requeue(claim.uuid)
    assert again.status is Status.QUEUED and not again.done, "a queued one is left alone"
    assert store.wait_for_work(1) == claim.uuid
    assert not store.complete(claim, answer(claim.uuid)), "the old claim is fenced"


def test_complete_lists_callbacks_and_called_back_keeps_the_outcome(store: Store) -> None:
    uuid = enqueue(store, url=URL, callback="http://127.0.0.1:1/cb")
    plain = enqueue(store, url=URL)
    assert store.wait_for_work(1) == uuid and store.wait_for_work(1) == plain
    for each in (uuid, plain):
        held = store.claim(each, "w", 30)
        assert held is not None and store.complete(held, answer(each))
    assert store.wait_for_callback(1) == uuid and store.wait_for_callback(0.1) is None
    job = store.take_callback(uuid, 30)
    assert job is not None and job.status == Status.SUCCESS
    assert json.loads(job.request)["callback"] == "http://127.0.0.1:1/cb"
    assert json.loads(job.summary)["code"] == 200
    assert store.called_back(job, {"url": "u", "attempts": 1, "code": 200})
    assert (store.get(uuid) or {})["callback_result"]["code"] == 200
    unknown = replace(job, uuid="00000000-0000-4000-8000-000000000000")
    assert not store.called_back(unknown, {}), "no such request"


def test_an_idempotency_key_makes_one_request(store: Store) -> None:
    spec = validate_request({"url": URL})
    key = Idempotency("k1", "print-a", 60)
    first = store.enqueue(new_uuid(), spec, now_ms(), key)
    again = store.enqueue(new_uuid(), spec, now_ms(), key)
    other = store.enqueue(new_uuid(), spec, now_ms(), Idempotency("k1", "print-b", 60))
    assert first.existing is None and again.existing == first.uuid and not again.conflict
    assert other.conflict and other.existing == first.uuid
    assert store.redis.zcard(store.keys.all) == 1
    assert 0 < store.redis.pttl(store.keys.idempotency("k1")) <= 60_000


def test_cancel_of_a_finished_request_keeps_how_it_ended_in_the_history(store: Store) -> None:
    claim = claimed(store)
    assert store.complete(claim, answer(claim.uuid))
    assert store.cancel(claim.uuid) is Status.SUCCESS
    (first,) = store.attempts(claim.uuid) or []
    assert (first["outcome"], first["code"], first["reason"]) == ("success", 200, "OK")
    assert store.requeue(claim.uuid).done
    assert [a["attempt"] for a in store.attempts(claim.uuid) or []] == [1], "recorded once"


def test_requeue_leaves_a_replaced_request_alone(store: Store) -> None:
    first = enqueue(store, url=URL, id="same")
    second = enqueue(store, url=URL, id="same")
    found = store.requeue(first)
    assert found.status is Status.CANCELED and found.replaced_by == second and not found.done
    assert store.status(first) is Status.CANCELED


def finished_with_id(store: Store, id: str) -> str:
    uuid = enqueue(store, url=URL, id=id)
    assert store.complete(claimed(store, uuid), answer(uuid))
    return uuid


def holder(store: Store, id: str) -> str | None:
    held = store.redis.hget(store.keys.ids, id)
    return held.decode() if held is not None else None


def test_requeue_holds_the_id_again(store: Store) -> None:
    first = finished_with_id(store, "same")
    assert holder(store, "same") is None
    assert store.requeue(first).done and holder(store, "same") == first
    second = enqueue(store, url=URL, id="same")
    assert store.status(first) is Status.CANCELED and field(store, first, "replaced_by") == second
    assert holder(store, "same") == second


def test_requeue_leaves_alone_a_request_whose_id_another_holds(store: Store) -> None:
    first = finished_with_id(store, "same")
    second = enqueue(store, url=URL, id="same")
    found = store.requeue(first)
    assert not found.done and found.held_by == second and found.status is Status.SUCCESS
    assert store.status(first) is Status.SUCCESS and indexed(store, first) == ["success"]
    assert store.status(second) is Status.QUEUED and holder(store, "same") == second
    store.cancel(second)
    assert store.requeue(first).done and holder(store, "same") == first


def test_a_turn_sent_again_gets_the_same_answer(store: Store) -> None:
    """Redis ran a thread's round trip but its answer was lost (the connection dropped): the
    thread sends it again, and must neither lose its claim nor see its result refused."""
    first = enqueue(store, url=URL)
    second = enqueue(store, url=URL)
    assert store.wait_for_work(1) == first
    claim = store.claim(first, "w/sender-1", 30)
    assert claim is not None and store.wait_for_work(1) == second
    turn = store.ops  # the same operation (the same bytes), run twice
    claiming = turn.claim(second, "w/sender-1", 30)
    once, again = store.run(claiming), store.run(claiming)
    assert once is not None and again is not None
    assert (again.token, again.attempts) == (once.token, once.attempts), "the same claim"
    assert store.claim(second, "w/sender-2", 30) is None, "another thread is still refused"
    completing = turn.complete(claim, answer(first))
    assert store.run(completing) and store.run(completing), "stored, then recognised"
    retrying = turn.retry(once, answer(second, Status.ERROR), now_ms() + 60_000)
    assert store.run(retrying) and store.run(retrying)
    assert store.stats()["fenced"] == 0 and store.stats()["retried"] == 1
    assert len(store.attempts(second) or []) == 1, "recorded once"

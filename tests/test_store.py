"""The worker's side of the store: a busy thread's one round trip, and taking ahead of need."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from htq.config import StoreConfig
from htq.models import Status, now_ms, response_resource
from htq.store import CLAIM, COMPLETE, Claim, Link, Store
from htq.worker._health import worker_store
from tests.redis_process import ValkeyProcess
from tests.workers import enqueue


@pytest.fixture
def link(store: Store) -> Iterator[Link]:
    link = store.link()
    yield link
    link.close()


def answer(uuid: str) -> dict[str, object]:
    return response_resource(
        uuid, Status.SUCCESS, time_ms=now_ms(), elapsed_ms=1.0, code=200, reason="OK",
        headers={}, data="ok",
    )  # fmt: skip


def turn(
    store: Store, link: Link, result: Claim | None, claim: str | None, *, take: bool = True
) -> tuple[bool | None, Claim | None, str | None]:
    done = store.turn(
        link,
        result=(result, answer(result.uuid)) if result else None,
        claim=claim,
        worker="w",
        lease=30,
        take=take,
    )
    return done.stored, done.claim, done.taken


def test_a_turn_stores_claims_and_takes_the_next(store: Store, link: Link) -> None:
    first, second, third = (enqueue(store, url=f"http://127.0.0.1:1/{n}") for n in range(3))
    assert store.wait_for_work(1) == first
    stored, held, taken = turn(store, link, None, first)
    assert (stored, taken) == (None, second)
    assert held is not None and held.request["url"] == "http://127.0.0.1:1/0"
    stored, held_next, taken = turn(store, link, held, second)
    assert (stored, taken) == (True, third)
    assert held_next is not None and held_next.uuid == second
    response = store.response(first)
    assert store.status(first) is Status.SUCCESS and response and response["data"] == "ok"
    assert store.status(second) is Status.PENDING
    # Taken ahead of need: out of the queue, not claimed yet, and no longer queued twice.
    assert store.status(third) is Status.QUEUED
    assert store.redis.lrange(store.keys.claiming, 0, -1) == [third.encode()]
    assert store.redis.llen(store.keys.queue) == 0


def test_a_turn_reports_a_refused_result_and_an_unclaimable_uuid(store: Store, link: Link) -> None:
    sent, canceled = enqueue(store, url="http://127.0.0.1:1/a"), enqueue(store, url="http://x/")
    store.wait_for_work(1)
    _, held, taken = turn(store, link, None, sent)
    assert held is not None and taken == canceled
    store.cancel(sent)
    store.cancel(canceled)
    stored, claimed, taken = turn(store, link, held, canceled)
    assert (stored, claimed, taken) == (False, None, None)
    assert store.status(sent) is Status.CANCELED and store.response(sent) is None
    assert store.redis.llen(store.keys.claiming) == 0


def test_a_turn_reloads_scripts_a_restarted_redis_forgot() -> None:
    valkey = ValkeyProcess().start()  # of its own: a new server has no script cached
    store = worker_store(StoreConfig(redis_url=valkey.url, prefix="fresh"))
    link = store.link()
    try:
        uuid = enqueue(store, url="http://127.0.0.1:1/")
        assert store.redis.script_exists(CLAIM.sha, COMPLETE.sha) == [False, False]
        _, held, _ = turn(store, link, None, store.wait_for_work(1))
        assert held is not None and held.uuid == uuid
        assert turn(store, link, held, None, take=False) == (True, None, None)
        assert store.status(uuid) is Status.SUCCESS
    finally:
        link.close()
        store.close()
        valkey.close()


def test_untake_puts_uuids_back_first_in_line(store: Store) -> None:
    uuids = [enqueue(store, url=f"http://127.0.0.1:1/{n}") for n in range(4)]
    taken = [store.wait_for_work(1), store.wait_for_work(1)]
    assert taken == uuids[:2]
    assert store.untake(taken) == 2
    assert store.untake(taken) == 0, "only what is still in `claiming` goes back"
    assert [store.wait_for_work(1) for _ in range(5)] == [*uuids, None]

"""The store's scripts, called directly: a busy thread's one round trip, taking ahead of need,
replacing by `id`, reading what htq 0.2 stored, and a listing page."""

from __future__ import annotations

import json

from htq.config import StoreConfig
from htq.models import Status, new_uuid, now_ms, response_resource, validate_request
from htq.store import CLAIM, COMPLETE, PAGE, Claim, Operation, Store, worker_store
from htq.store._sync import SKEW_MS
from tests.support.redis_server import ValkeyProcess
from tests.support.store import enqueue


def run_page(store: Store, keys: list[str], args: list[object]) -> list[object]:
    """The PAGE script's raw reply."""
    return store.run(Operation((PAGE.command(keys, args),), lambda replies: replies[0]))


def answer(uuid: str) -> dict[str, object]:
    return response_resource(
        uuid, Status.SUCCESS, time_ms=now_ms(), elapsed_ms=1.0, code=200, reason="OK",
        headers={}, data="ok",
    )  # fmt: skip


def turn(
    store: Store, result: Claim | None, claim: str | None, *, take: bool = True
) -> tuple[bool | None, Claim | None, str | None]:
    done = store.turn(
        result=(result, answer(result.uuid)) if result else None,
        claim=claim,
        worker="w",
        lease=30,
        take=take,
    )
    return done.stored, done.claim, done.taken


def test_a_turn_stores_claims_and_takes_the_next(store: Store) -> None:
    first, second, third = (enqueue(store, url=f"http://127.0.0.1:1/{n}") for n in range(3))
    assert store.wait_for_work(1) == first
    stored, held, taken = turn(store, None, first)
    assert (stored, taken) == (None, second)
    assert held is not None and held.spec.url == "http://127.0.0.1:1/0"
    stored, held_next, taken = turn(store, held, second)
    assert (stored, taken) == (True, third)
    assert held_next is not None and held_next.uuid == second
    response = store.response(first).resource
    assert store.status(first) is Status.SUCCESS and response and response["data"] == "ok"
    assert store.status(second) is Status.PENDING
    # Taken ahead of need: out of the queue, not claimed yet, and no longer queued twice.
    assert store.status(third) is Status.QUEUED
    assert store.redis.lrange(store.keys.claiming, 0, -1) == [third.encode()]
    assert store.redis.llen(store.keys.queue) == 0


def test_a_turn_reports_a_refused_result_and_an_unclaimable_uuid(store: Store) -> None:
    sent, canceled = enqueue(store, url="http://127.0.0.1:1/a"), enqueue(store, url="http://x/")
    store.wait_for_work(1)
    _, held, taken = turn(store, None, sent)
    assert held is not None and taken == canceled
    store.cancel(sent)
    store.cancel(canceled)
    stored, claimed, taken = turn(store, held, canceled)
    assert (stored, claimed, taken) == (False, None, None)
    assert store.status(sent) is Status.CANCELED and store.response(sent).resource is None
    assert store.redis.llen(store.keys.claiming) == 0


def test_a_turn_reloads_scripts_a_restarted_redis_forgot() -> None:
    valkey = ValkeyProcess().start()  # of its own: a new server has no script cached
    store = worker_store(StoreConfig(redis_url=valkey.url, prefix="fresh"))
    try:
        uuid = enqueue(store, url="http://127.0.0.1:1/")
        assert store.redis.script_exists(CLAIM.sha, COMPLETE.sha) == [False, False]
        _, held, _ = turn(store, None, store.wait_for_work(1))
        assert held is not None and held.uuid == uuid
        assert turn(store, held, None, take=False) == (True, None, None)
        assert store.status(uuid) is Status.SUCCESS
    finally:
        store.close()
        valkey.close()


def test_untake_puts_uuids_back_first_in_line(store: Store) -> None:
    uuids = [enqueue(store, url=f"http://127.0.0.1:1/{n}") for n in range(4)]
    taken = [store.wait_for_work(1), store.wait_for_work(1)]
    assert taken == uuids[:2]
    assert store.untake(taken) == 2
    assert store.untake(taken) == 0, "only what is still in `claiming` goes back"
    assert [store.wait_for_work(1) for _ in range(5)] == [*uuids, None]


# -- replacing by `id`, one script ---------------------------------------------------------------


def test_an_id_replaces_the_unfinished_request_that_held_it(store: Store) -> None:
    first = enqueue(store, url="http://127.0.0.1:1/a", id="job")
    second = enqueue(store, url="http://127.0.0.1:1/b", id="job")
    assert store.status(first) is Status.CANCELED
    assert (store.get(first) or {})["replaced_by"] == second
    assert store.redis.hget(store.keys.ids, "job") == second.encode()
    assert store.wait_for_work(1) == first  # still in the queue: its claim will refuse it
    assert store.claim(first, "w", 30) is None
    # A pending holder is canceled too (its worker is told), and fenced: its result is refused.
    assert store.wait_for_work(1) == second
    held = store.claim(second, "w", 30)
    assert held is not None
    third = enqueue(store, url="http://127.0.0.1:1/c", id="job")
    assert store.status(second) is Status.CANCELED
    assert not store.complete(held, answer(second))
    assert store.stats()["fenced"] == 1
    assert store.get(third) is not None and "replaced_by" not in (store.get(third) or {})


def test_a_finished_request_is_not_replaced(store: Store) -> None:
    first = enqueue(store, url="http://127.0.0.1:1/a", id="job")
    assert store.wait_for_work(1) == first
    held = store.claim(first, "w", 30)
    assert held is not None and store.complete(held, answer(first))
    second = enqueue(store, url="http://127.0.0.1:1/b", id="job")
    assert store.status(first) is Status.SUCCESS and "replaced_by" not in (store.get(first) or {})
    assert store.status(second) is Status.QUEUED


def test_the_survivor_of_an_id_is_never_older_than_what_it_replaced(store: Store) -> None:
    spec = validate_request({"url": "http://127.0.0.1:1/", "id": "job"})
    first, second = new_uuid(), new_uuid()
    store.enqueue(first, spec, 2_000_000_000_000)
    assert store.enqueue(second, spec, 1_000_000_000_000).replaced == first  # a slower clock
    assert (store.get(second) or {})["time"] == 2_000_000_000_000


# -- what htq 0.2 stored ---------------------------------------------------------------------


def test_a_request_stored_by_htq_0_2_is_read_and_sent(store: Store) -> None:
    """0.2 kept the whole resource in one JSON field; an upgrade finds such requests queued."""
    uuid = enqueue(store, url="http://127.0.0.1:1/new")
    old = {"timeout": 5, "status": "queued", "data": {"a": 1}, "headers": {"X": "y"},
           "url": "http://127.0.0.1:1/old", "method": "post", "uuid": uuid, "time": 1}  # fmt: skip
    key = store.keys.request(uuid)
    store.redis.hdel(key, "headers", "data")
    store.redis.hset(key, "request", json.dumps(old))
    resource = store.get(uuid)
    assert resource is not None
    assert (resource["url"], resource["data"], resource["headers"]) == (
        old["url"],
        {"a": 1},
        {"X": "y"},
    )
    assert store.wait_for_work(1) == uuid
    held = store.claim(uuid, "w", 30)
    assert held is not None and held.spec.data == {"a": 1} and held.spec.headers == {"X": "y"}


# -- a listing page ------------------------------------------------------------------------------


def test_a_page_reads_only_the_fields_asked_for_and_stops_at_its_budget(store: Store) -> None:
    uuids = [enqueue(store, url="http://127.0.0.1:1/", data="x" * 1000) for _ in range(4)]
    keys = [store.keys.request(uuid) for uuid in uuids]
    light = run_page(store, keys, [100, "status", "time"])
    assert len(light) == 8 and light[0] == b"queued", "small rows: all four fit"
    heavy = run_page(store, keys, [2500, "status", "data"])
    assert len(heavy) == 4 and json.loads(heavy[1]) == "x" * 1000, "two rows of ~1 KB fit 2.5 KB"
    assert len(run_page(store, keys, [10, "status", "data"])) == 2, "the first row always"
    store.cancel(uuids[0])
    store.redis.delete(keys[0])  # expired since it was listed
    assert run_page(store, keys[:1], [10, "status"]) == [None]


def test_servers_announce_where_they_listen_until_they_stop_saying_it(store: Store) -> None:
    here = {"host": "a", "port": 5001, "addresses": ["127.0.0.1"]}
    there = {"host": "b", "port": 5002, "addresses": ["192.0.2.1"]}
    now = now_ms()
    assert store.run(store.ops.announce([here], now, 60)) == 1
    assert (
        store.run(store.ops.announce([there], now - 61_000 - SKEW_MS, 60)) == 1
    )  # not renewed since, clocks aside
    assert store.servers() == [here]
    store.run(store.ops.announce([here], now + 1000, 60))  # renewed: still one entry
    assert store.redis.zcard(store.keys.servers) == 1, "the stale one went"
    assert store.servers() == [here]
    assert store.run(store.ops.withdraw([here])) == 1
    assert store.servers() == []
    assert store.run(store.ops.withdraw([])) == 0

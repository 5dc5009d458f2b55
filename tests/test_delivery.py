"""Delivery policy with real Redis, real workers and real targets: retries and Retry-After,
scheduling, the attempt history, requeue, callbacks and idempotent submission."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pytest

from htq.config import StoreConfig, WorkerConfig
from htq.models import Status, now_ms
from htq.store import Store
from htq.worker import Worker
from tests.support.api import post, queue, until
from tests.support.server import ServerThread, server_config_for
from tests.support.store import done, enqueue, wait_for_status
from tests.support.target import Target

FAST = {"min": 0.05, "max": 0.2, "factor": 2}


@pytest.fixture
def workers(config: WorkerConfig) -> Iterator[Worker]:
    with Worker(replace(config, threads=4)) as worker:
        yield worker


def resource(api: httpx.Client, uuid: str) -> dict[str, Any]:
    answer = api.get(f"/{uuid}/")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def attempts_of(api: httpx.Client, uuid: str) -> list[dict[str, Any]]:
    answer = api.get(f"/{uuid}/attempts/")
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


# -- retries -----------------------------------------------------------------------------------


def test_a_target_that_fails_twice_then_answers(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    uuid = queue(api, {"url": f"{target.url}/flaky/a/2", "retries": 3, "backoff": FAST})
    assert done(store, uuid) is Status.SUCCESS
    response = api.get(f"/{uuid}/response/").json()
    assert response["code"] == 200 and json.loads(response["data"]) == {"attempt": 3}
    history = attempts_of(api, uuid)
    assert [a["attempt"] for a in history] == [1, 2, 3]
    assert [a.get("code") for a in history] == [503, 503, 200]
    assert [a["outcome"] for a in history] == ["success", "success", "success"]
    assert all(a["start"] and a["elapsed"] >= 0 and "data" not in a for a in history)
    assert history[0]["start"] <= history[1]["start"] <= history[2]["start"]
    sent = [r for r in target.requests if r.path == "/flaky/a/2"]
    assert [r.headers["Htq-Attempt"] for r in sent] == ["1", "2", "3"]
    assert {r.headers["Htq-Request-Id"] for r in sent} == {uuid}
    shown = resource(api, uuid)
    assert shown["attempts"] == 3 and shown["retries"] == 3 and "due" not in shown
    link = api.get(f"/{uuid}/").headers["Link"]
    assert f'<{api.base_url}{uuid}/attempts/>; rel="attempts"' in link


def test_the_last_attempt_decides_when_retries_run_out(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    uuid = queue(api, {"url": f"{target.url}/status/502", "retries": 2, "backoff": FAST})
    assert done(store, uuid) is Status.SUCCESS
    assert api.get(f"/{uuid}/response/").json()["code"] == 502
    assert [a["code"] for a in attempts_of(api, uuid)] == [502, 502, 502]
    refused = queue(api, {"url": "http://127.0.0.1:9/", "retries": 1, "backoff": FAST})
    assert done(store, refused) is Status.ERROR
    history = attempts_of(api, refused)
    assert [a["outcome"] for a in history] == ["error", "error"]
    assert history[0]["message"].startswith("Could not connect")


def test_no_retries_unless_asked(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    uuid = queue(api, {"url": f"{target.url}/status/503"})
    assert done(store, uuid) is Status.SUCCESS
    (only,) = attempts_of(api, uuid)
    assert only["attempt"] == 1 and only["code"] == 503 and only["outcome"] == "success"
    (sent,) = [r for r in target.requests if r.path == "/status/503"]
    assert "Htq-Attempt" not in sent.headers
    assert "attempts" not in resource(api, uuid) and "retries" not in resource(api, uuid)


def test_retry_on_chooses_the_codes(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    uuid = queue(
        api,
        {"url": f"{target.url}/status/404", "retries": 2, "retry_on": [404], "backoff": FAST},
    )
    assert done(store, uuid) is Status.SUCCESS
    assert len(attempts_of(api, uuid)) == 3
    other = queue(api, {"url": f"{target.url}/flaky/b/1", "retries": 2, "retry_on": [404]})
    assert done(store, other) is Status.SUCCESS
    assert api.get(f"/{other}/response/").json()["code"] == 503  # not in retry_on: final


def test_retry_after_is_honoured(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    path = "/busy/c/2"
    uuid = queue(api, {"url": f"{target.url}{path}", "retries": 1, "backoff": {"min": 0.05}})
    waiting = wait_for_status(store, uuid, frozenset({Status.QUEUED}), timeout=5)
    assert waiting is Status.QUEUED
    until(lambda: "due" in resource(api, uuid))
    shown = resource(api, uuid)
    assert shown["status"] == "queued" and shown["attempts"] == 1
    assert shown["due"] >= now_ms() + 1000
    assert done(store, uuid) is Status.SUCCESS
    first, second = [r for r in target.requests if r.path == path]
    assert second.time - first.time >= 2.0


def test_retry_after_is_capped_by_backoff_max(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    path = "/busy/d/3600"
    uuid = queue(
        api, {"url": f"{target.url}{path}", "retries": 1, "backoff": {"min": 0.1, "max": 0.5}}
    )
    assert done(store, uuid) is Status.SUCCESS
    first, second = [r for r in target.requests if r.path == path]
    assert 0.4 <= second.time - first.time < 3


def test_a_waiting_retry_holds_no_thread(
    api: httpx.Client, store: Store, target: Target, config: WorkerConfig
) -> None:
    """One thread: while a request waits 30 s for its next attempt, others are sent."""
    slow = queue(api, {"url": f"{target.url}/status/503", "retries": 1, "backoff": {"min": 30}})
    with Worker(replace(config, threads=1)):
        until(lambda: resource(api, slow).get("due") is not None)
        others = [queue(api, {"url": f"{target.url}/ip"}) for _ in range(3)]
        assert all(done(store, uuid, timeout=5) is Status.SUCCESS for uuid in others)
        assert store.status(slow) is Status.QUEUED


def test_cancel_during_backoff_cancels(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    path = "/status/500"
    uuid = queue(api, {"url": f"{target.url}{path}", "retries": 3, "backoff": {"min": 1}})
    until(lambda: resource(api, uuid).get("due") is not None)
    assert api.delete(f"/{uuid}/").status_code == 204
    shown = resource(api, uuid)
    assert shown["status"] == "canceled" and "due" not in shown
    time.sleep(2.5)  # past when the next attempt was due
    assert len([r for r in target.requests if r.path == path and r.method == "GET"]) == 1
    assert store.status(uuid) is Status.CANCELED
    assert [a["outcome"] for a in attempts_of(api, uuid)] == ["success"]


# -- scheduling --------------------------------------------------------------------------------


def test_a_scheduled_request_is_not_sent_early_and_is_sent_on_time(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    path = "/ip"
    queued_at = time.time()
    uuid = queue(api, {"url": f"{target.url}{path}", "delay": 1.5})
    shown = resource(api, uuid)
    assert shown["status"] == "queued" and shown["due"] >= (queued_at + 1.5) * 1000 - 5
    assert "due" in api.get("/", params={"fields": "due,status"}).json()[0]
    assert done(store, uuid, timeout=10) is Status.SUCCESS
    (sent,) = target.requests
    sent_at = time.time() - (time.monotonic() - sent.time)
    assert shown["due"] / 1000 - 0.01 <= sent_at < shown["due"] / 1000 + 0.5
    assert "due" not in resource(api, uuid)


def test_not_before_takes_epoch_ms_or_an_iso_time(
    api: httpx.Client, store: Store, target: Target
) -> None:
    due = now_ms() + 60_000
    uuid = queue(api, {"url": f"{target.url}/ip", "not_before": due})
    assert resource(api, uuid)["due"] == due
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due / 1000 + 60))
    other = queue(api, {"url": f"{target.url}/ip", "not_before": iso})
    assert abs(resource(api, other)["due"] - (due + 60_000)) < 1000
    past = queue(api, {"url": f"{target.url}/ip", "not_before": "2020-01-01T00:00:00+00:00"})
    assert "due" not in resource(api, past), "a time gone by is now"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"delay": 1, "not_before": 1}, "not_before"),
        ({"delay": -1}, "delay"),
        ({"delay": "soon"}, "delay"),
        ({"not_before": "2026-12-01T09:00:00"}, "not_before"),  # no zone
        ({"not_before": "9999-01-01T00:00:00Z"}, "not_before"),  # too far
        ({"retries": 101}, "retries"),
        ({"retries": True}, "retries"),
        ({"retry_on": [600]}, "retry_on"),
        ({"retry_on": "503"}, "retry_on"),
        ({"backoff": {"min": 5, "max": 1}}, "backoff"),
        ({"backoff": {"step": 1}}, "backoff"),
        ({"backoff": {"factor": 0.5}}, "backoff"),
        ({"callback": "ftp://x/"}, "callback"),
        ({"failure_callback": "http://169.254.169.254/"}, "failure_callback"),
    ],
)
def test_bad_delivery_fields_are_422_naming_them(
    api: httpx.Client, store: Store, fields: dict[str, Any], field: str
) -> None:
    answer = post(api, {"url": "http://127.0.0.1:9/", **fields})
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert store.redis.zcard(store.keys.all) == 0


def test_1000_due_at_once_through_3_workers_each_sent_once(
    store: Store, store_config: StoreConfig, target: Target, config: WorkerConfig
) -> None:
    due = now_ms() + 1500
    uuids = [enqueue(store, url=f"{target.url}/ip/{n}", not_before=due) for n in range(1000)]
    three = [Worker(replace(config, threads=8)) for _ in range(3)]
    for worker in three:
        worker.start()
    try:
        for uuid in uuids:
            assert done(store, uuid, timeout=30) is Status.SUCCESS
    finally:
        for worker in three:
            worker.stop()
    sent = Counter(r.path for r in target.requests)
    assert sent == Counter({f"/ip/{n}": 1 for n in range(1000)}), "each sent exactly once"
    first_sent = time.time() - (time.monotonic() - min(r.time for r in target.requests))
    assert first_sent >= due / 1000 - 0.01, "none before its time"


# -- requeue -----------------------------------------------------------------------------------


def test_requeue_a_finished_request_keeps_its_history(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    uuid = queue(api, {"url": f"{target.url}/status/500"})
    assert done(store, uuid) is Status.SUCCESS
    answer = api.post(f"/{uuid}/retry/")
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/{uuid}/")
    until(lambda: store.status(uuid) is Status.SUCCESS and len(attempts_of(api, uuid)) == 2)
    assert [a["attempt"] for a in attempts_of(api, uuid)] == [1, 2]
    assert len([r for r in target.requests if r.path == "/status/500"]) == 2
    canceled = queue(api, {"url": f"{target.url}/ip", "delay": 60})
    api.delete(f"/{canceled}/")
    assert api.post(f"/{canceled}/retry/").status_code == 303
    assert done(store, canceled) is Status.SUCCESS


def test_requeue_refuses_what_is_not_finished(api: httpx.Client, store: Store) -> None:
    uuid = queue(api, {"url": "http://127.0.0.1:9/", "delay": 60})
    answer = api.post(f"/{uuid}/retry/")
    assert answer.status_code == 409 and answer.json()["error"] == "conflict"
    first = queue(api, {"url": "http://127.0.0.1:9/", "delay": 60, "id": "once"})
    queue(api, {"url": "http://127.0.0.1:9/", "delay": 60, "id": "once"})
    answer = api.post(f"/{first}/retry/")
    assert answer.status_code == 409 and "replaced by" in answer.json()["message"]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert api.post(f"/{unknown}/retry/").status_code == 404
    assert api.get(f"/{unknown}/attempts/").status_code == 404


# -- callbacks ---------------------------------------------------------------------------------


def test_callbacks_get_the_response(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    ok = queue(api, {"url": f"{target.url}/ip", "callback": f"{target.url}/echo?ok"})
    failed = queue(
        api,
        {"url": "http://127.0.0.1:9/", "callback": f"{target.url}/echo?no",
         "failure_callback": f"{target.url}/status/202"},
    )  # fmt: skip
    until(
        lambda: (
            "callback_result" in resource(api, ok) and "callback_result" in resource(api, failed)
        )
    )
    (call,) = [r for r in target.requests if r.path == "/echo"]
    assert call.method == "POST" and call.headers["Htq-Request-Id"] == ok
    assert json.loads(call.body) == api.get(f"/{ok}/response/").json()
    assert resource(api, ok)["callback_result"] == {
        "url": f"{target.url}/echo?ok", "attempts": 1, "code": 200,
    }  # fmt: skip
    (failure,) = [r for r in target.requests if r.path == "/status/202"]
    assert json.loads(failure.body)["status"] == "error"
    assert resource(api, failed)["callback_result"]["code"] == 202
    assert resource(api, ok)["status"] == "success", "a callback never changes the status"


def test_a_callback_target_that_never_answers_delays_nothing(
    api: httpx.Client, store: Store, target: Target, workers: Worker
) -> None:
    stuck = [
        queue(api, {"url": f"{target.url}/ip", "callback": f"{target.url}/delay/60"})
        for _ in range(4)
    ]
    assert all(done(store, uuid) is Status.SUCCESS for uuid in stuck)
    started = time.monotonic()
    others = [queue(api, {"url": f"{target.url}/ip"}) for _ in range(10)]
    assert all(done(store, uuid, timeout=5) is Status.SUCCESS for uuid in others)
    assert time.monotonic() - started < 5


# -- idempotent submission ---------------------------------------------------------------------


def test_one_idempotency_key_makes_one_request(api: httpx.Client, store: Store) -> None:
    body = {"url": "http://127.0.0.1:9/", "data": {"order": 42}}
    headers = {"Idempotency-Key": "order-42"}

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=str(api.base_url)) as own:
            return post(own, body, headers=headers)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(send, range(50)))
    assert {a.status_code for a in answers} == {303}
    assert len({a.headers["Location"] for a in answers}) == 1
    assert store.redis.zcard(store.keys.all) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 49
    conflict = post(api, {**body, "data": {"order": 43}}, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    same = post(api, {**body, "id": None}, headers=headers)  # null: as if not given
    assert same.status_code == 303 and same.headers["Idempotent-Replayed"] == "true"
    fresh = post(api, body, headers={"Idempotency-Key": "order-43"})
    assert fresh.status_code == 303 and store.redis.zcard(store.keys.all) == 2


def test_an_idempotency_key_is_forgotten_after_its_ttl(
    store: Store, store_config: StoreConfig
) -> None:
    server = ServerThread(server_config_for(store_config, idempotency_ttl=1.0))
    try:
        with httpx.Client(base_url=server.url) as api:
            headers = {"Idempotency-Key": "k"}
            first = post(api, {"url": "http://127.0.0.1:9/"}, headers=headers)
            key = store.keys.idempotency("k")
            assert store.redis.exists(key)
            deadline = time.monotonic() + 3  # 1 s, and the rest to spare on a busy machine
            while store.redis.exists(key):  # Redis expires it after the TTL
                assert time.monotonic() < deadline, "the key outlived its TTL"
                time.sleep(0.05)
            second = post(api, {"url": "http://127.0.0.1:9/"}, headers=headers)
        assert first.headers["Location"] != second.headers["Location"]
    finally:
        server.stop()


def test_callback_passwords_are_masked(api: httpx.Client) -> None:
    uuid = queue(
        api,
        {"url": "http://127.0.0.1:9/", "delay": 60, "callback": "http://u:pw@127.0.0.1:9/cb",
         "failure_callback": "http://v:secret@127.0.0.1:9/f"},
    )  # fmt: skip
    shown = resource(api, uuid)
    assert shown["callback"] == "http://u:********@127.0.0.1:9/cb"
    assert shown["failure_callback"] == "http://v:********@127.0.0.1:9/f"
    listed = api.get("/", params={"fields": "uuid"}).json()
    assert "pw" not in json.dumps(api.get("/").json()) and listed

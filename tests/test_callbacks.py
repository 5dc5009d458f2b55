"""Callbacks against hostile and slow receivers, with real workers: bounded memory and time,
one host never delays another, a guard's refusal is final, at least once, own webhook-ids."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from standardwebhooks import Webhook

from htq.config import OutboundConfig, StoreConfig, WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from htq.worker import _callbacks as callbacks
from tests.support.processes import HtqProcess, start_worker
from tests.support.receiver import Receiver
from tests.support.store import answer, done, enqueue


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def workers(store_config: StoreConfig) -> Iterator[list[HtqProcess]]:
    """Real `htq worker` processes the test starts; each stopped (by PID) at the end."""
    started: list[HtqProcess] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def worker_process(started: list[HtqProcess], store_config: StoreConfig, *extra: str) -> HtqProcess:
    worker = start_worker(store_config.redis_url, store_config.prefix, *extra, threads=1)
    started.append(worker)
    return worker


def callback_result(store: Store, uuid: str, timeout: float = 10.0) -> dict[str, Any]:
    """The request's `callback_result`, once it has one."""
    deadline = time.monotonic() + timeout
    while (result := (store.get(uuid) or {}).get("callback_result")) is None:
        assert time.monotonic() < deadline, f"no callback result for {uuid} in {timeout} s"
        time.sleep(0.02)
    assert isinstance(result, dict)
    return result


def peak_memory(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_a_hostile_callback_answer_costs_no_memory_and_little_time(
    store: Store, receiver: Receiver, workers: list[HtqProcess], store_config: StoreConfig
) -> None:
    worker = worker_process(workers, store_config)
    warm = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/ok")
    assert callback_result(store, warm)["code"] == 204
    before = peak_memory(worker.pid)
    started = time.monotonic()
    endless = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/endless")
    bomb = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/bomb")
    assert callback_result(store, endless) == {
        "url": f"{receiver.url}/endless", "attempts": 1, "code": 200,
    }  # fmt: skip
    assert callback_result(store, bomb)["code"] == 200
    assert time.monotonic() - started < 5
    grown = peak_memory(worker.pid) - before
    assert grown < 16 * 1024 * 1024, f"the worker's peak grew by {grown / 2**20:.0f} MiB"
    (call,) = receiver.to("/bomb")
    assert call.headers["Accept-Encoding"] == "identity"


def test_a_trickling_receiver_holds_a_try_no_longer_than_its_deadline(
    store: Store, receiver: Receiver, config: WorkerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each try is bounded whole (not per read), and so is the callback (shorter here)."""
    monkeypatch.setattr(callbacks, "TRY_TIMEOUT", 1.0)
    monkeypatch.setattr(callbacks, "BACKOFF", (0.2, 0.2))
    monkeypatch.setattr(callbacks, "DEADLINE", 3.4)
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/trickle")
    with Worker(config):
        assert done(store, uuid) is Status.SUCCESS
        finished = time.monotonic()
        result = callback_result(store, uuid)
    assert time.monotonic() - finished < 3.4 + 1
    assert result == {"url": f"{receiver.url}/trickle", "attempts": 3, "error": "Timed out."}
    tries = receiver.to("/trickle")
    assert len(tries) == 3 and 1.1 <= tries[1].time - tries[0].time < 2


def test_a_slow_host_never_delays_a_callback_to_another(store: Store, config: WorkerConfig) -> None:
    with Receiver() as slow, Receiver("127.0.0.2") as fast, Worker(config):
        for _ in range(4):
            enqueue(store, url=f"{fast.url}/ok", callback=f"{slow.url}/slow")
        slow.wait_for("/slow", n=2)
        uuid = enqueue(store, url=f"{fast.url}/ok", callback=f"{fast.url}/ok?cb")
        assert done(store, uuid) is Status.SUCCESS
        finished = time.monotonic()
        fast.wait_for("/ok", n=6, timeout=5)
        (call,) = [a for a in fast.to("/ok") if a.method == "POST"]
        assert call.headers["Htq-Request-Id"] == uuid
        assert call.time - finished < 2, "the fast host's callback waited for the slow host"
        assert callback_result(store, uuid)["code"] == 204
        assert slow.most_in_flight["/slow"] == 2, "at most 2 callbacks in flight to one host"


def test_a_callback_the_guard_refuses_is_tried_once(
    store: Store, receiver: Receiver, config: WorkerConfig
) -> None:
    refusing = replace(config, outbound=OutboundConfig(deny=("localhost",)))
    port = receiver.url.rsplit(":", 1)[1]
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"http://localhost:{port}/ok")
    with Worker(refusing):
        assert done(store, uuid) is Status.SUCCESS
        finished = time.monotonic()
        result = callback_result(store, uuid)
    assert time.monotonic() - finished < 1, "no backoff before a second try"
    assert result["attempts"] == 1 and "code" not in result
    assert result["error"].startswith("Refused by htq's outbound guard: localhost")
    assert [a.path for a in receiver.arrivals] == ["/ok"], "only the request came"


def test_a_callback_a_killed_worker_was_sending_is_sent_by_another(
    store: Store, receiver: Receiver, workers: list[HtqProcess], store_config: StoreConfig
) -> None:
    first = worker_process(workers, store_config, "--lease", "2")
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/hold-first")
    receiver.wait_for("/hold-first", timeout=10)
    first.kill()
    worker_process(workers, store_config, "--lease", "2")
    assert callback_result(store, uuid, timeout=15)["code"] == 204
    held, delivered = receiver.wait_for("/hold-first", n=2)
    assert delivered.body == held.body and delivered.headers["Htq-Request-Id"] == uuid


def test_each_callback_has_its_own_webhook_id(
    store: Store, receiver: Receiver, config: WorkerConfig
) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/ok?cb")
    with Worker(replace(config, signing_secrets=(secret,))):
        assert callback_result(store, uuid)["code"] == 204
        assert store.requeue(uuid).done
        receiver.wait_for("/ok", n=4)
    request, first, again, second = receiver.to("/ok")
    assert request.headers["webhook-id"] == uuid
    for call in (first, second):
        assert Webhook(secret).verify(call.body, call.headers)["uuid"] == uuid
    ids = {request.headers["webhook-id"], first.headers["webhook-id"], second.headers["webhook-id"]}
    assert len(ids) == 3, "the request and each of its callbacks: one webhook-id each"
    assert again.headers["webhook-id"] == uuid, "the requeued request itself"


def test_callbacks_waiting_for_a_busy_host_are_taken_once(
    store: Store, config: WorkerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy host's backlog is neither taken again and again nor ahead of other callbacks."""
    takes: list[str] = []
    take = Store.take_callback

    def counted(self: Store, uuid: str, lease: float) -> Any:
        takes.append(uuid)
        return take(self, uuid, lease)

    monkeypatch.setattr(Store, "take_callback", counted)
    with Receiver() as slow, Receiver("127.0.0.2") as fast, Worker(config):
        to_slow = {"url": f"{fast.url}/ok", "callback": f"{slow.url}/slow"}
        backlog = [enqueue(store, **to_slow) for _ in range(30)]
        assert all(done(store, uuid) is Status.SUCCESS for uuid in backlog)
        slow.wait_for("/slow", n=2)
        uuid = enqueue(store, url=f"{fast.url}/ok", callback=f"{fast.url}/ok?cb")
        assert done(store, uuid) is Status.SUCCESS
        finished = time.monotonic()
        assert callback_result(store, uuid)["code"] == 204
        assert time.monotonic() - finished < 2, "the other host's callback waited behind"
        time.sleep(3)  # a window in which a backlog taken again and again would show
        assert len(takes) <= 31 + 2, f"{len(takes)} takes of 31 callbacks"
        assert len(slow.to("/slow")) == 2


def test_ports_of_one_host_share_its_bound(store: Store, config: WorkerConfig) -> None:
    with Receiver() as one, Receiver() as other, Worker(config):
        for receiver in (one, other, one, other):
            enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/slow")
        deadline = time.monotonic() + 5
        while len(one.to("/slow")) + len(other.to("/slow")) < 2:
            assert time.monotonic() < deadline, "no callback came"
            time.sleep(0.02)
        time.sleep(1.5)  # a window in which a third callback to the host would show
        assert len(one.to("/slow")) + len(other.to("/slow")) == 2


def test_a_callback_held_longer_than_the_lease_is_sent_once(
    store: Store, receiver: Receiver, config: WorkerConfig
) -> None:
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/late")
    with Worker(replace(config, lease=1.0)):
        assert callback_result(store, uuid, timeout=15)["code"] == 204
    assert len(receiver.to("/late")) == 1, "sent again while its first POST was answered"


def stored_result(store: Store, uuid: str, timeout: float = 5.0) -> dict[str, Any]:
    """`callback_result` as stored, for a request the API cannot render."""
    deadline = time.monotonic() + timeout
    while (result := store.redis.hget(store.keys.request(uuid), "callback_result")) is None:
        assert time.monotonic() < deadline, f"no callback result for {uuid} in {timeout} s"
        time.sleep(0.02)
    outcome = json.loads(result)
    assert isinstance(outcome, dict)
    return outcome


@pytest.mark.parametrize("request_field", ["{not json", '{"callback": "x", "retry_on": 5}'])
def test_a_callback_htq_cannot_read_is_settled_with_an_error(
    store: Store, receiver: Receiver, config: WorkerConfig, request_field: str
) -> None:
    """Written by another htq, say: settled once, not taken again every lease."""
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/ok?cb")
    assert store.wait_for_work(1) == uuid
    claim = store.claim(uuid, "w", 30)
    assert claim is not None and store.complete(claim, answer(uuid))
    store.redis.hset(store.keys.request(uuid), "request", request_field)
    with Worker(config):
        result = stored_result(store, uuid)
    assert result["error"].startswith("htq could not read the stored request")
    assert receiver.to("/ok") == [] and store.redis.zcard(store.keys.callback_leases) == 0


def test_a_sender_thread_that_cannot_start_loses_nothing(
    store: Store, receiver: Receiver, config: WorkerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed: list[str] = []

    class FailingOnce(threading.Thread):
        def start(self) -> None:
            if self.name.startswith("htq-callbacks-") and not failed:
                failed.append(self.name)
                raise RuntimeError("can't start new thread")
            super().start()

    worker = Worker(config)
    monkeypatch.setattr(callbacks.threading, "Thread", FailingOnce)
    uuid = enqueue(store, url=f"{receiver.url}/ok", callback=f"{receiver.url}/ok?cb")
    with worker:
        assert callback_result(store, uuid)["code"] == 204
        assert failed, "the first sender did not start"
        sent = worker.callbacks
        deadline = time.monotonic() + 5
        while sent._held or sent._busy:  # settled just after its result was stored
            assert time.monotonic() < deadline, "still counted as held"
            time.sleep(0.02)
    assert sent._free._value == callbacks.THREADS, "a sender slot given back twice"
    assert len([a for a in receiver.to("/ok") if a.method == "POST"]) == 1

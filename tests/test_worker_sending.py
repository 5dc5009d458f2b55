"""What a worker sends and stores, in this process, against a real Valkey and a real HTTP target."""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import replace

import pytest

from htq.config import WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from tests.support.redis_server import free_port
from tests.support.store import SPEC_FIELDS, answer_of, done, enqueue
from tests.support.target import Target, random_bytes, text_bytes

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
    one = enqueue(store, url=f"{target.url}/delay/10", timeout=1)
    assert done(store, one) is Status.TIMEOUT
    answer = store.response(one).resource
    assert answer is not None and answer["message"].endswith("timeout of 1 second.")
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

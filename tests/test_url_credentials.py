"""Credentials in a URL (`user:password@`) are sent as Basic authorization, never shown back,
never logged."""

from __future__ import annotations

import base64
import time

import httpx

from htq.config import StoreConfig, WorkerConfig
from htq.models import Status
from htq.store import Store
from htq.worker import Worker
from tests.support.api import post
from tests.support.processes import start_worker
from tests.support.server import ServerThread
from tests.support.store import done, enqueue
from tests.support.target import Target


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


def with_credentials(target: Target, userinfo: str, path: str) -> str:
    return f"http://{userinfo}@127.0.0.1:{target.port}{path}"


def test_the_urls_credentials_are_sent_as_basic(
    store: Store, config: WorkerConfig, target: Target
) -> None:
    plain = enqueue(store, url=with_credentials(target, "alice:pw", "/ip"))
    encoded = enqueue(store, url=with_credentials(target, "al%40ice:p%3Aw%C3%A9", "/ip"))
    user_only = enqueue(store, url=with_credentials(target, "alice", "/ip"))
    own = enqueue(  # the request's own Authorization is sent as given
        store, url=with_credentials(target, "alice:pw", "/ip"), headers={"authorization": "X y"}
    )
    with Worker(config):
        for uuid in (plain, encoded, user_only, own):
            assert done(store, uuid) is Status.SUCCESS
    sent = sorted(
        value
        for request in target.requests
        for name, value in request.headers.items()
        if name.lower() == "authorization"
    )
    assert sent == sorted([basic("alice:pw"), basic("al@ice:p:wé"), basic("alice:"), "X y"]), (
        "as httpx.Client sends a URL's credentials"
    )
    assert all("@" not in request.headers["Host"] for request in target.requests)


def test_the_urls_password_is_masked_in_every_read(api: httpx.Client, server: ServerThread) -> None:
    url = "http://alice:hunter2@192.0.2.1/x"
    answer = post(api, {"url": url, "callback": url, "failure_callback": url})
    assert answer.status_code == 303
    shown = [api.get(answer.headers["Location"]).json()]
    shown += api.get("/", params={"status": "all"}).json()
    shown += api.get("/", params={"status": "all", "fields": "url"}).json()
    for resource in shown:
        assert "hunter2" not in str(resource)
        assert resource["url"] == "http://alice:********@192.0.2.1/x"


def test_debug_logs_never_show_a_password(
    redis_url: str, store: Store, store_config: StoreConfig, target: Target
) -> None:
    callback = with_credentials(target, "carol:s3cret", "/status/200")
    worker = start_worker(redis_url, store_config.prefix, "--debug", threads=1)
    try:
        uuid = enqueue(
            store, url=with_credentials(target, "alice:hunter2", "/ip"), callback=callback
        )
        assert done(store, uuid) is Status.SUCCESS
        worker.wait_for("callback to http://carol:********@127.0.0.1")
        deadline = time.monotonic() + 10
        while not any(r.path == "/status/200" for r in target.requests):
            assert time.monotonic() < deadline, "the callback never came"
            time.sleep(0.02)
    finally:
        worker.stop()
    output = worker.output()
    assert "s3cret" not in output and "hunter2" not in output, output
    callback_request = next(r for r in target.requests if r.path == "/status/200")
    assert callback_request.headers["Authorization"] == basic("carol:s3cret")

"""The spec's tutorial, step by step, against real `htq server` and `htq worker` processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from htq.config import StoreConfig
from tests.support.processes import HtqProcess, start_server, start_worker
from tests.support.target import Target


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


@pytest.fixture
def htq_server(store_config: StoreConfig) -> Iterator[HtqProcess]:
    server = start_server(store_config.redis_url, store_config.prefix)
    try:
        yield server
    finally:
        assert server.stop() == 0


def test_the_tutorial(htq_server: HtqProcess, store_config: StoreConfig, target: Target) -> None:
    assert htq_server.output().splitlines()[:2] == [
        "Starting htq REST server...",
        f" * Running on {htq_server.url}",
    ]
    api = httpx.Client(base_url=htq_server.url, timeout=30)

    # Send a POST ... This immediately returns a 303 See Other with the Location of the request.
    posted = api.post(
        "/",
        content=json.dumps({"url": f"{target.url}/ip"}),
        headers={"Content-Type": "application/json"},
    )
    assert posted.status_code == 303
    location = posted.headers["Location"]
    uuid = location.rstrip("/").rsplit("/", 1)[1]
    assert location == f"{htq_server.url}{uuid}/"

    # See what the request resource looks like.
    resource = api.get(location)
    assert resource.status_code == 200
    body = resource.json()
    assert body["status"] == "queued" and body["method"] == "get" and body["uuid"] == uuid
    assert 'rel="response"' in resource.headers["Link"]
    assert api.get(f"{location}status/").json() == {"status": "queued"}

    # Start a worker to actually send the request.
    worker = start_worker(store_config.redis_url, store_config.prefix, "--debug", threads=10)
    try:
        assert worker.wait_for(f"[{uuid}] response received").splitlines()[:3] == [
            "Started 10 workers...",
            f"[{uuid}] sending request...",
            f"[{uuid}] response received",
        ]
        assert api.get(f"{location}status/").json() == {"status": "success"}

        # Now let's use the link to the response itself.
        response = api.get(f"{location}response/")
        assert response.status_code == 200
        answer = response.json()
        assert list(answer)[:8] == [
            "status", "time", "code", "reason", "elapsed", "uuid", "headers", "data",
        ]  # fmt: skip
        assert answer["code"] == 200 and answer["reason"] == "OK" and answer["uuid"] == uuid
        assert json.loads(answer["data"]) == {"origin": "127.0.0.1"}
        assert answer["elapsed"] > 0 and answer["time"] >= body["time"]

        # Canceling a request: one delayed for 30 seconds.
        slow = api.post(  # as the tutorial's curl: -H Content-Type:application/json
            "/",
            content=json.dumps({"url": f"{target.url}/delay/30"}),
            headers={"Content-Type": "application/json"},
        )
        slow_location = slow.headers["Location"]
        slow_uuid = slow_location.rstrip("/").rsplit("/", 1)[1]
        assert target.wait_for_request("/delay/30", timeout=10) is not None
        assert api.get(f"{slow_location}status/").json() == {"status": "pending"}
        deleted_at = time.monotonic()
        deleted = api.delete(slow_location)
        assert deleted.status_code == 204
        assert api.get(f"{slow_location}status/").json() == {"status": "canceled"}
        # Internally this interrupts the request, and sends a DELETE to the endpoint.
        gone = target.wait_for_disconnect(timeout=5, path="/delay/30")
        assert gone is not None and gone - deleted_at < 1.0
        assert target.wait_for_delete("/delay/30", timeout=5) is not None
        assert api.get(f"{slow_location}response/").status_code == 404
        worker.wait_for(f"[{slow_uuid}] canceled")
    finally:
        assert worker.stop() == 0

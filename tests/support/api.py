"""Short ways to do what a client and a worker do against the API and the store."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx

from htq.models import Status, now_ms, response_resource
from htq.store import Store

TUTORIAL_URL = "http://httpbin.org/ip"

# One TLS context for the tests' clients (`verify=TLS`): a client made without one loads the CA
# bundle again, ~20 ms of CPU each (seconds in a loop), though the tests speak plain HTTP.
TLS = ssl.create_default_context()


def post(
    api: httpx.Client, payload: Any, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    return api.post(
        "/",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json", **(headers or {})},
        **kwargs,
    )


def queue(api: httpx.Client, payload: Any) -> str:
    """POST a request and follow nothing: return the uuid from the 303's Location."""
    response = post(api, payload)
    assert response.status_code == 303, response.text
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def finish(store: Store, uuid: str, body: str = '{"origin": "127.0.0.1"}') -> dict[str, Any]:
    """Do what a worker does: claim the request and store a response for it."""
    taken = store.wait_for_work(1)
    assert taken == uuid
    claim = store.claim(taken, "test-worker", 30)
    assert claim is not None
    response = response_resource(
        uuid,
        Status.SUCCESS,
        time_ms=now_ms(),
        elapsed_ms=12.5,
        code=200,
        reason="OK",
        headers={"Content-Type": "application/json"},
        data=body,
    )
    assert store.complete(claim, response)
    return response


def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def pings(store: Store) -> bool:
    try:
        return bool(store.redis.ping())
    except Exception:
        return False


def pages(api: httpx.Client, url: str) -> Iterator[httpx.Response]:
    """Each page of a listing, following `Link: rel="next"` from `url`."""
    next_url: str | None = url
    while next_url:
        answer = api.get(next_url)
        assert answer.status_code == 200, answer.text
        yield answer
        next_url = answer.links.get("next", {}).get("url")

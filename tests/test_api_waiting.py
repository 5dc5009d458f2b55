"""GET /<uuid>/response/ blocks until the request is done, without holding a thread."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from htq.store import Store
from tests.support.api import TUTORIAL_URL, finish, queue, until
from tests.support.server import ServerThread

# -- waiting for a response ----------------------------------------------------------------


def wait_in_background(
    api: httpx.Client, server: ServerThread, uuid: str
) -> tuple[threading.Thread, list[httpx.Response]]:
    """A client blocked on /response/ in a thread; returns once the server counts it waiting."""
    got: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: got.append(httpx.get(f"{server.url}{uuid}/response/", timeout=20))
    )
    waiter.start()
    until(lambda: api.get("/stats").json()["waiters"] == 1)
    return waiter, got


def test_a_waiter_is_released_when_the_request_finishes(
    api: httpx.Client, store: Store, server: ServerThread
) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    waiter, got = wait_in_background(api, server, uuid)
    assert not got, "it blocks while the request is queued"
    stored = finish(store, uuid)
    waiter.join(10)
    assert got and got[0].status_code == 200 and got[0].json() == stored


def test_a_waiter_on_a_canceled_request_gets_404(api: httpx.Client, server: ServerThread) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    waiter, got = wait_in_background(api, server, uuid)
    api.delete(f"/{uuid}/")
    waiter.join(10)
    assert got[0].status_code == 404 and "canceled" in got[0].json()["message"]


def test_wait_bounds_the_wait_with_202(api: httpx.Client) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    started = time.monotonic()
    response = api.get(f"/{uuid}/response/?wait=0.3")
    assert response.status_code == 202 and response.json() == {"status": "queued"}
    assert time.monotonic() - started >= 0.3
    assert api.get(f"/{uuid}/response/?wait=0").status_code == 202


def test_hundreds_of_waiters_hold_no_threads(
    server: ServerThread, store: Store, api: httpx.Client
) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    threads_before = threading.active_count()

    async def wait_all() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            tasks = [asyncio.create_task(client.get(f"/{uuid}/response/")) for _ in range(300)]
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as other:
                while (await other.get("/stats")).json()["waiters"] < 300:
                    await asyncio.sleep(0.05)
            assert threading.active_count() == threads_before
            await asyncio.to_thread(finish, store, uuid)
            return [r.status_code for r in await asyncio.gather(*tasks)]

    assert asyncio.run(wait_all()) == [200] * 300
    assert api.get("/stats").json()["waiters"] == 0


def test_concurrent_posts_each_queue_their_own_request(
    server: ServerThread, store: Store, api: httpx.Client
) -> None:
    # Their script calls share round trips (one batch per event-loop turn, several batches in
    # flight on one connection): every caller still gets its own answer.
    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/", json={"url": f"{TUTORIAL_URL}?n={n}"}) for n in range(300))
            )

    answers = asyncio.run(post_all())
    assert [a.status_code for a in answers] == [303] * 300
    uuids = [a.headers["Location"].rstrip("/").rsplit("/", 1)[1] for a in answers]
    assert len(set(uuids)) == 300
    urls = {api.get(f"/{uuid}/").json()["url"] for uuid in uuids}
    assert urls == {f"{TUTORIAL_URL}?n={n}" for n in range(300)}
    assert store.redis.llen(store.keys.queue) == 300


def test_a_client_that_goes_away_stops_waiting(api: httpx.Client, server: ServerThread) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}{uuid}/response/", timeout=0.5)
    until(lambda: api.get("/stats").json()["waiters"] == 0)

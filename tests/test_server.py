"""The REST API as a client sees it: a real Tornado server on loopback, a real Redis behind it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest

from htq.config import StoreConfig
from htq.models import Status, now_ms, response_resource
from htq.store import Store
from tests.support.redis_server import ValkeyProcess
from tests.support.server import ServerThread, server_config_for

TUTORIAL_URL = "http://httpbin.org/ip"


def post(api: httpx.Client, payload: Any, **kwargs: Any) -> httpx.Response:
    return api.post(
        "/", content=json.dumps(payload), headers={"Content-Type": "application/json"}, **kwargs
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


# -- the tutorial -------------------------------------------------------------------------


def test_post_answers_303_with_an_absolute_location(
    api: httpx.Client, server: ServerThread
) -> None:
    response = post(api, {"url": TUTORIAL_URL})
    assert response.status_code == 303
    assert response.headers["Content-Length"] == "0"
    location = response.headers["Location"]
    assert location.startswith(server.url) and location.endswith("/")


def test_request_resource_has_the_spec_fields(api: httpx.Client, server: ServerThread) -> None:
    before = now_ms()
    uuid = queue(api, {"url": TUTORIAL_URL})
    response = api.get(f"/{uuid}/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["timeout", "status", "data", "headers", "url", "method", "uuid", "time"]
    assert body["timeout"] == 60
    assert body["status"] == "queued"
    assert body["data"] is None and body["headers"] == {}
    assert body["url"] == TUTORIAL_URL and body["method"] == "get" and body["uuid"] == uuid
    assert before <= body["time"] <= now_ms()
    base = f"{server.url}{uuid}/"
    assert response.headers["Link"] == (
        f'<{base}response/>; rel="response", <{base}>; rel="self", <{base}status/>; rel="status"'
    )


def test_status_is_lightweight(api: httpx.Client) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    response = api.get(f"/{uuid}/status/")
    assert response.text == '{"status": "queued"}'
    assert response.headers["Content-Length"] == "20"


def test_response_is_served_once_the_worker_stored_it(
    api: httpx.Client, store: Store, server: ServerThread
) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    stored = finish(store, uuid)
    assert api.get(f"/{uuid}/status/").json() == {"status": "success"}
    response = api.get(f"/{uuid}/response/")
    assert response.status_code == 200
    assert response.json() == stored
    assert list(response.json()) == [
        "status",
        "time",
        "code",
        "reason",
        "elapsed",
        "uuid",
        "headers",
        "data",
    ]
    base = f"{server.url}{uuid}/"
    assert response.headers["Link"] == f'<{base}>; rel="request", <{base}response/>; rel="self"'


def test_cancel_a_queued_request(api: httpx.Client, store: Store) -> None:
    uuid = queue(api, {"url": "http://127.0.0.1:9/delay/30"})
    response = api.delete(f"/{uuid}/")
    assert response.status_code == 204 and response.content == b""
    assert api.get(f"/{uuid}/status/").json() == {"status": "canceled"}
    assert api.delete(f"/{uuid}/").status_code == 204, "cancel is idempotent"
    assert store.wait_for_work(0.1) == uuid
    assert store.claim(uuid, "w", 10) is None, "a canceled request is never sent"
    gone = api.get(f"/{uuid}/response/")
    assert gone.status_code == 404 and "canceled" in gone.json()["message"]


def test_cancel_a_finished_request_deletes_its_response(api: httpx.Client, store: Store) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    finish(store, uuid)
    assert api.delete(f"/{uuid}/").status_code == 204
    assert api.get(f"/{uuid}/status/").json() == {"status": "canceled"}
    assert api.get(f"/{uuid}/response/").status_code == 404


def test_delete_response_then_404(api: httpx.Client, store: Store) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    assert api.delete(f"/{uuid}/response/").status_code == 404, "nothing to delete yet"
    finish(store, uuid)
    assert api.delete(f"/{uuid}/response/").status_code == 204
    second = api.get(f"/{uuid}/response/")
    assert second.status_code == 404 and "deleted" in second.json()["message"]
    assert api.delete(f"/{uuid}/response/").status_code == 404
    assert api.get(f"/{uuid}/status/").json() == {"status": "success"}


# -- request attributes -------------------------------------------------------------------


def test_method_defaults_to_post_with_data_and_keeps_every_field(api: httpx.Client) -> None:
    uuid = queue(
        api,
        {
            "url": "https://example.com/x?y=1",
            "data": "a=1",
            "headers": {"X-Token": "t"},
            "timeout": 2.5,
            "id": "job-7",
        },
    )
    body = api.get(f"/{uuid}/").json()
    assert body["method"] == "post" and body["data"] == "a=1" and body["timeout"] == 2.5
    assert body["headers"] == {"X-Token": "t"} and body["id"] == "job-7"
    explicit = api.get(f"/{queue(api, {'url': TUTORIAL_URL, 'method': 'delete'})}/").json()
    assert explicit["method"] == "delete"


def test_json_data_is_kept_as_json(api: httpx.Client) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL, "data": {"a": [1, 2]}})
    assert api.get(f"/{uuid}/").json()["data"] == {"a": [1, 2]}


def test_a_new_request_with_the_same_id_cancels_the_unfinished_one(
    api: httpx.Client, store: Store
) -> None:
    first = queue(api, {"url": TUTORIAL_URL, "id": "report"})
    second = queue(api, {"url": TUTORIAL_URL, "id": "report"})
    assert api.get(f"/{first}/status/").json() == {"status": "canceled"}
    assert api.get(f"/{second}/status/").json() == {"status": "queued"}
    other = queue(api, {"url": TUTORIAL_URL, "id": "another"})
    assert api.get(f"/{other}/status/").json() == {"status": "queued"}

    assert store.wait_for_work(1) == first
    assert store.claim(first, "w", 10) is None
    finish(store, second)
    third = queue(api, {"url": TUTORIAL_URL, "id": "report"})
    assert api.get(f"/{second}/status/").json() == {"status": "success"}, "finished ones stay"
    assert api.get(f"/{third}/status/").json() == {"status": "queued"}


def test_same_id_cancels_a_pending_request_and_fences_its_worker(
    api: httpx.Client, store: Store
) -> None:
    first = queue(api, {"url": TUTORIAL_URL, "id": 42})
    claim = store.claim(store.wait_for_work(1) or "", "w", 30)
    assert claim is not None
    queue(api, {"url": TUTORIAL_URL, "id": "42"})
    assert api.get(f"/{first}/status/").json() == {"status": "canceled"}
    late = response_resource(
        first, Status.SUCCESS, time_ms=now_ms(), elapsed_ms=1, code=200, reason="OK"
    )
    assert not store.complete(claim, late), "a result after the cancel is refused"
    assert api.get(f"/{first}/status/").json() == {"status": "canceled"}
    assert store.stats()["fenced"] == 1


# -- bad input ----------------------------------------------------------------------------

BAD_BODIES = [
    ("{", 400, "malformed", "not valid JSON"),
    ("[1, 2]", 400, "malformed", "JSON object"),
    ('"text"', 400, "malformed", "JSON object"),
    ("{}", 422, "invalid", "`url` is required"),
    ('{"url": 5}', 422, "invalid", "`url` must be a string"),
    ('{"url": "ftp://example.com/"}', 422, "invalid", "http:// or https://"),
    ('{"url": "example.com/ip"}', 422, "invalid", "http:// or https://"),
    ('{"url": "http://"}', 422, "invalid", "no host"),
    ('{"url": "http://host:99999/"}', 422, "invalid", "not a valid URL"),
    ('{"url": "http://a b/"}', 422, "invalid", "spaces"),
    ('{"url": "http://x/", "method": "GE T"}', 422, "invalid", "`method`"),
    ('{"url": "http://x/", "method": ""}', 422, "invalid", "`method`"),
    ('{"url": "http://x/", "method": 1}', 422, "invalid", "`method`"),
    ('{"url": "http://x/", "timeout": "60"}', 422, "invalid", "`timeout` must be a number"),
    ('{"url": "http://x/", "timeout": true}', 422, "invalid", "`timeout` must be a number"),
    ('{"url": "http://x/", "timeout": 0}', 422, "invalid", "more than 0"),
    ('{"url": "http://x/", "timeout": -1}', 422, "invalid", "more than 0"),
    ('{"url": "http://x/", "timeout": 1e9}', 422, "invalid", "at most"),
    ('{"url": "http://x/", "headers": []}', 422, "invalid", "`headers` must be an object"),
    ('{"url": "http://x/", "headers": "a: b"}', 422, "invalid", "`headers` must be an object"),
    ('{"url": "http://x/", "headers": {"A": 1}}', 422, "invalid", "string value"),
    ('{"url": "http://x/", "headers": {"A": "b\\r\\nX: y"}}', 422, "invalid", "CR, LF"),
    (
        '{"url": "http://x/", "headers": {"A\\nB": "c"}}',
        422,
        "invalid",
        "not a valid HTTP header name",
    ),
    ('{"url": "http://x/", "id": {}}', 422, "invalid", "`id`"),
    ('{"url": "http://x/", "id": ""}', 422, "invalid", "`id`"),
    ('{"url": "http://x/", "callback": "http://y/"}', 422, "invalid", "Unknown field(s): callback"),
    (b"\xff\xfe", 400, "malformed", "not valid JSON"),
]


@pytest.mark.parametrize(("body", "status", "code", "words"), BAD_BODIES)
def test_bad_input_is_refused_and_nothing_is_stored(
    api: httpx.Client, store: Store, body: str | bytes, status: int, code: str, words: str
) -> None:
    kept = queue(api, {"url": TUTORIAL_URL})
    response = api.post("/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()
    assert error["error"] == code and words in error["message"]
    assert store.stats()["total"] == 1, "nothing was stored"
    assert api.get(f"/{kept}/").json()["status"] == "queued", "nothing stored changed"


def test_a_body_over_the_limit_is_413(store_config: StoreConfig, store: Store) -> None:
    server = ServerThread(server_config_for(store_config, max_body=2048))
    try:
        body = json.dumps({"url": TUTORIAL_URL, "data": "x" * 4096})
        response = httpx.post(server.url, content=body)
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"
        assert store.stats()["total"] == 0
    finally:
        server.stop()


def test_a_body_that_is_not_json_is_415(api: httpx.Client) -> None:
    response = api.post("/", content=b"<xml/>", headers={"Content-Type": "application/xml"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"


def test_curl_default_form_content_type_is_accepted(api: httpx.Client) -> None:
    response = api.post(
        "/",
        content=json.dumps({"url": TUTORIAL_URL}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303


@pytest.mark.parametrize(
    "path",
    [
        "/nope/",
        "/nope/status/",
        "/nope/response/",
        "/00000000-0000-4000-8000-000000000000/",
        "/00000000-0000-4000-8000-000000000000/status/",
        "/00000000-0000-4000-8000-000000000000/response/",
    ],
)
def test_unknown_or_malformed_uuid_is_404(api: httpx.Client, path: str) -> None:
    answers = [api.get(path)] + ([] if path.endswith("status/") else [api.delete(path)])
    for response in answers:
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_unknown_paths_and_methods_answer_json(api: httpx.Client) -> None:
    missing = api.get("/a/b/c/d")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = api.put("/")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=5000", "limit=x", "status=done", "cursor=abc", "cursor=-1"]
)
def test_bad_listing_parameters_are_400(api: httpx.Client, query: str) -> None:
    response = api.get(f"/?{query}")
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


@pytest.mark.parametrize("wait", ["x", "-1", "1e9"])
def test_bad_wait_is_400(api: httpx.Client, wait: str) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    assert api.get(f"/{uuid}/response/?wait={wait}").status_code == 400


# -- listing ------------------------------------------------------------------------------


def test_listing_pages_through_every_queued_request(
    api: httpx.Client, server: ServerThread
) -> None:
    uuids = [queue(api, {"url": f"{TUTORIAL_URL}?n={n}"}) for n in range(25)]
    canceled = uuids[3]
    api.delete(f"/{canceled}/")
    seen: list[str] = []
    url: str | None = "/?limit=10"
    pages = 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        page = response.json()
        assert all(item["status"] == "queued" for item in page)
        assert all(item["links"]["self"] == f"{server.url}{item['uuid']}/" for item in page)
        seen += [item["uuid"] for item in page]
        link = response.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else None
        assert link is None or link.endswith('rel="next"')
        pages += 1
    assert pages == 3
    assert seen == [u for u in reversed(uuids) if u != canceled], "newest first, no repeats"


def test_listing_by_status_and_all(api: httpx.Client, store: Store) -> None:
    done = queue(api, {"url": TUTORIAL_URL})
    waiting = queue(api, {"url": TUTORIAL_URL})
    finish(store, done)
    success = api.get("/?status=success").json()
    assert [item["uuid"] for item in success] == [done]
    assert success[0]["result"] == {"code": 200, "reason": "OK", "elapsed": 12.5}
    assert [item["uuid"] for item in api.get("/").json()] == [waiting]
    assert [item["uuid"] for item in api.get("/?status=all").json()] == [waiting, done]


def test_an_empty_listing_is_an_empty_array(api: httpx.Client) -> None:
    response = api.get("/")
    assert response.json() == [] and "Link" not in response.headers


def test_stats_count_each_status(api: httpx.Client, store: Store) -> None:
    done = queue(api, {"url": TUTORIAL_URL})
    queue(api, {"url": TUTORIAL_URL})
    api.delete(f"/{queue(api, {'url': TUTORIAL_URL})}/")
    finish(store, done)
    stats = api.get("/stats").json()
    assert stats["counts"] == {
        "queued": 1,
        "pending": 0,
        "success": 1,
        "error": 0,
        "timeout": 0,
        "canceled": 1,
    }
    assert stats["total"] == 3 and stats["queue_depth"] == 1 and stats["waiters"] == 0


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
    _until(lambda: api.get("/stats").json()["waiters"] == 1)
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
    _until(lambda: api.get("/stats").json()["waiters"] == 0)


# -- retention, proxies, Redis down --------------------------------------------------------


def test_finished_requests_expire_after_the_ttl(store_config: StoreConfig) -> None:
    config = StoreConfig(store_config.redis_url, store_config.prefix, ttl=1)
    store = Store(config)
    server = ServerThread(server_config_for(config))
    try:
        with httpx.Client(base_url=server.url) as api:
            uuid = queue(api, {"url": TUTORIAL_URL})
            finish(store, uuid)
            assert api.get(f"/{uuid}/").status_code == 200
            _until(lambda: api.get(f"/{uuid}/").status_code == 404, timeout=5)
            store.purge()
            assert api.get("/?status=all").json() == []
            assert store.stats()["total"] == 0
    finally:
        server.stop()
        store.close()


def test_xheaders_make_links_use_the_proxy_address(store_config: StoreConfig, store: Store) -> None:
    server = ServerThread(server_config_for(store_config, xheaders=True))
    try:
        response = httpx.post(
            server.url,
            content=json.dumps({"url": TUTORIAL_URL}),
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "htq.example.com"},
        )
        assert response.headers["Location"].startswith("https://htq.example.com/")
    finally:
        server.stop()


def test_redis_down_is_503_and_the_server_recovers(store_config: StoreConfig) -> None:
    valkey = ValkeyProcess().start()
    config = StoreConfig(valkey.url, store_config.prefix)
    server = ServerThread(server_config_for(config))
    try:
        with httpx.Client(base_url=server.url, timeout=15) as api:
            uuid = queue(api, {"url": TUTORIAL_URL})
            valkey.stop()
            for response in (
                post(api, {"url": TUTORIAL_URL}),
                api.get(f"/{uuid}/"),
                api.get("/"),
                api.get("/stats"),
                api.delete(f"/{uuid}/"),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "unavailable"
            valkey.start()
            _until(lambda: post(api, {"url": TUTORIAL_URL}).status_code == 303, timeout=10)
            assert api.get(f"/{uuid}/status/").json() == {"status": "queued"}, "data kept"
    finally:
        server.stop()
        valkey.close()


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_listing_can_pick_fields_and_answers_304_when_unchanged(api: httpx.Client) -> None:
    for n in range(3):
        queue(api, {"url": f"{TUTORIAL_URL}?n={n}", "data": "x" * 1000})
    response = api.get("/?fields=status,url&limit=2")
    items = response.json()
    assert [sorted(item) for item in items] == [["status", "url", "uuid"]] * 2
    assert "fields=status%2Curl%2Cuuid" in response.headers["Link"]
    etag = response.headers["Etag"]
    assert (
        api.get("/?fields=status,url&limit=2", headers={"If-None-Match": etag}).status_code == 304
    )
    queue(api, {"url": TUTORIAL_URL})
    assert (
        api.get("/?fields=status,url&limit=2", headers={"If-None-Match": etag}).status_code == 200
    )
    bad = api.get("/?fields=status,secret")
    assert bad.status_code == 400 and "secret" in bad.json()["message"]


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_no_503_once_a_restarted_redis_answers(store_config: StoreConfig, how: str) -> None:
    """Connections pooled before the restart are stale: none of them may cost a client a 503."""
    valkey = ValkeyProcess().start()
    config = StoreConfig(valkey.url, store_config.prefix)
    server = ServerThread(server_config_for(config))
    try:
        with httpx.Client(base_url=server.url, timeout=15) as api:
            uuids = [queue(api, {"url": TUTORIAL_URL}) for _ in range(3)]
            for uuid in uuids:  # every kind of call, so each kind of connection is pooled
                assert api.get(f"/{uuid}/").status_code == 200
            assert api.get("/").status_code == 200 and api.get("/stats").status_code == 200
            assert api.get(f"/{uuids[0]}/response/?wait=0.01").status_code == 202
            valkey.kill() if how == "kill" else valkey.stop()
            valkey.start()
            probe = Store(config)
            _until(lambda: _pings(probe), timeout=10)
            probe.close()
            for answer in (
                post(api, {"url": TUTORIAL_URL}),
                api.get(f"/{uuids[0]}/"),
                api.get(f"/{uuids[0]}/status/"),
                api.get("/?status=all"),
                api.get("/stats"),
            ):
                assert answer.status_code in (200, 303), (answer.request.url, answer.text)
            assert api.get(f"/{uuids[1]}/response/?wait=0.01").status_code == 202
            assert api.delete(f"/{uuids[2]}/").status_code == 204
    finally:
        server.stop()
        valkey.close()


def _pings(store: Store) -> bool:
    try:
        return bool(store.redis.ping())
    except Exception:
        return False

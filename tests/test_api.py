"""The REST API as the tutorial and a client use it: post, read, list, cancel; a real Tornado
server on loopback, a real Redis behind it."""

from __future__ import annotations

import httpx

from htq.models import Status, now_ms, response_resource
from htq.store import Store
from tests.support.api import TUTORIAL_URL, finish, pages, post, queue
from tests.support.server import ServerThread

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
    # the spec's three links as it shows them, then the attempts
    assert response.headers["Link"] == (
        f'<{base}response/>; rel="response", <{base}>; rel="self", <{base}status/>; rel="status", '
        f'<{base}attempts/>; rel="attempts"'
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


# -- listing ------------------------------------------------------------------------------


def test_listing_pages_through_every_queued_request(
    api: httpx.Client, server: ServerThread
) -> None:
    uuids = [queue(api, {"url": f"{TUTORIAL_URL}?n={n}"}) for n in range(25)]
    canceled = uuids[3]
    api.delete(f"/{canceled}/")
    seen: list[str] = []
    walked = list(pages(api, "/?limit=10"))
    for response in walked:
        page = response.json()
        assert all(item["status"] == "queued" for item in page)
        assert all(item["links"]["self"] == f"{server.url}{item['uuid']}/" for item in page)
        seen += [item["uuid"] for item in page]
        link = response.headers.get("Link")
        assert link is None or link.endswith('rel="next"')
    assert len(walked) == 3
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


# -- an `id` and a retry ------------------------------------------------------------------------


def live_with_id(api: httpx.Client, id: str) -> list[str]:
    """The uuids of queued and pending requests with this `id`."""
    listed = api.get("/?status=all&limit=1000&fields=id,status").json()
    return [r["uuid"] for r in listed if r.get("id") == id and r["status"] in ("queued", "pending")]


def test_a_retried_request_holds_its_id_again(api: httpx.Client, store: Store) -> None:
    first = queue(api, {"url": TUTORIAL_URL, "id": "nightly"})
    finish(store, first)
    assert api.post(f"/{first}/retry/").status_code == 303
    second = queue(api, {"url": TUTORIAL_URL, "id": "nightly"})  # replaces it, as any POST
    assert live_with_id(api, "nightly") == [second]
    replaced = api.get(f"/{first}/").json()
    assert replaced["status"] == "canceled" and replaced["replaced_by"] == second


def test_a_retry_is_refused_while_a_later_request_holds_its_id(
    api: httpx.Client, store: Store
) -> None:
    first = queue(api, {"url": TUTORIAL_URL, "id": "nightly"})
    finish(store, first)
    second = queue(api, {"url": TUTORIAL_URL, "id": "nightly"})  # `first` was done: not replaced
    answer = api.post(f"/{first}/retry/")
    assert answer.status_code == 409 and second in answer.json()["message"], answer.text
    assert live_with_id(api, "nightly") == [second]
    assert api.get(f"/{first}/status/").json()["status"] == "success"
    assert api.delete(f"/{second}/").status_code == 204  # the holder gone, the retry goes
    assert api.post(f"/{first}/retry/").status_code == 303
    assert live_with_id(api, "nightly") == [first]
    third = queue(api, {"url": TUTORIAL_URL, "id": "nightly"})
    assert live_with_id(api, "nightly") == [third]


# -- HEAD ---------------------------------------------------------------------------------------


def same_but_the_body(api: httpx.Client, path: str) -> httpx.Response:
    """HEAD `path` and check it answers what GET does (RFC 9110), headers included."""
    got, head = api.get(path), api.head(path)
    assert head.status_code == got.status_code and head.content == b"", path
    assert int(head.headers["Content-Length"]) == len(got.content), path
    shown = {name: value for name, value in got.headers.items() if name != "date"}
    assert {name: value for name, value in head.headers.items() if name != "date"} == shown
    return head


def test_head_answers_as_get_without_the_body(api: httpx.Client, store: Store) -> None:
    uuid = queue(api, {"url": TUTORIAL_URL})
    finish(store, uuid)
    waiting = queue(api, {"url": TUTORIAL_URL})
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in ["/?status=all", "/stats", "/healthz", "/openapi.json", f"/{uuid}/",
                 f"/{uuid}/status/", f"/{uuid}/response/", f"/{uuid}/attempts/",
                 f"/{waiting}/response/?wait=0", f"/{unknown}/", "/?limit=5.0"]:  # fmt: skip
        same_but_the_body(api, path)
    assert api.head(f"/{waiting}/response/?wait=0").status_code == 202
    etag = api.head("/?status=all").headers["Etag"]
    assert api.head("/?status=all", headers={"If-None-Match": etag}).status_code == 304

"""What an attacker's input gets from the API: a 4xx in the JSON error shape, never a 500, and
nothing stored; and what a flood of one `id` or of huge requests cannot do to the others."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from htq.config import StoreConfig
from htq.models import MAX_URL_LENGTH, OWNED_HEADERS, Status
from htq.store import PAGE_BYTES, Store
from tests.support.api import pages
from tests.support.server import ServerThread, server_config_for

URL = "http://127.0.0.1:9/"


def described(rest: str) -> str:
    """A request description as raw JSON text: the URL, then `rest` (JSON that json.dumps
    would not write: escapes, NaN)."""
    return '{"url": "' + URL + '"' + rest + "}"


def post_raw(api: httpx.Client, body: bytes | str, **headers: str) -> httpx.Response:
    return api.post("/", content=body, headers={"Content-Type": "application/json", **headers})


def stored(store: Store) -> int:
    """How many requests the namespace holds."""
    return int(store.redis.zcard(store.keys.all))


def refused(answer: httpx.Response, code: int, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == code, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) >= {"error", "message"} and body["message"]
    if field is not None:
        assert body["field"] == field
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (described(r', "id": "\ud800"'), "id"),
        (described(r', "data": "a\udfffb"'), "data"),
        ('{"url": "' + URL + r'?q=\ud800"}', "url"),
        (described(r', "headers": {"X-A": "\udc00"}'), "headers"),
        (described(r', "data": {"k": ["\ud800"]}'), "data"),
    ],
)
def test_a_lone_surrogate_is_422_naming_its_field(
    api: httpx.Client, store: Store, body: str, field: str
) -> None:
    refused(post_raw(api, body), 422, field)
    assert stored(store) == 0


def test_a_surrogate_pair_is_text_like_any_other(api: httpx.Client, store: Store) -> None:
    answer = post_raw(api, described(r', "data": "\ud83d\ude00", "id": "\ud83d\ude00"'))
    assert answer.status_code == 303
    assert api.get(answer.headers["Location"]).json()["data"] == "\U0001f600"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": URL, "method": "GET\n"}, "method"),
        ({"url": URL, "headers": {"X-A\n": "1"}}, "headers"),
        ({"url": URL, "headers": {"X-A": "€"}}, "headers"),  # not Latin-1: HTTP cannot carry it
        ({"url": URL + "a" * MAX_URL_LENGTH}, "url"),
        ({"url": URL, "nope": 1}, "nope"),
    ],
)
def test_what_would_fail_at_send_is_422_at_post(
    api: httpx.Client, store: Store, payload: dict[str, Any], field: str
) -> None:
    refused(post_raw(api, json.dumps(payload)), 422, field)
    assert stored(store) == 0


@pytest.mark.parametrize("name", sorted(OWNED_HEADERS))
def test_headers_the_worker_owns_are_refused(api: httpx.Client, store: Store, name: str) -> None:
    for spelled in (name, name.title(), name.upper()):
        answer = post_raw(api, json.dumps({"url": URL, "headers": {spelled: "chunked"}}))
        assert spelled in refused(answer, 422, "headers")["message"]
    assert stored(store) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "[1, NaN]"])
def test_json_has_no_nan_or_infinity(api: httpx.Client, store: Store, number: str) -> None:
    refused(post_raw(api, described(', "data": {"n": ' + number + "}")), 422, "data")
    assert stored(store) == 0


def test_deep_nesting_is_400_not_a_crash(api: httpx.Client, store: Store) -> None:
    deep = described(', "data": ' + "[" * 100_000 + "]" * 100_000)
    refused(post_raw(api, deep), 400)
    assert stored(store) == 0


@pytest.mark.parametrize(
    "query",
    ["cursor=%C2%B2", "cursor=1.5", "limit=%D9%A1", "limit=1_0", "limit=nan", "cursor=-1"],
)
def test_a_query_number_is_plain_ascii_digits(api: httpx.Client, query: str) -> None:
    refused(api.get(f"/?{query}"), 400)


@pytest.mark.parametrize(
    "query",
    ["limit=5.0", "limit=%205", "limit=5%20", "limit=+5", "limit=%095", "limit=5%1A", "limit=1e2"],
)
def test_limit_is_read_as_sent_and_whole(api: httpx.Client, query: str) -> None:
    refused(api.get(f"/?{query}"), 400, "limit")


@pytest.mark.parametrize(
    "query",
    ["status=%20all", "status=all%00", "cursor=%200", "limit=1&limit=2", "status=all&status=all"],
)
def test_other_query_values_are_read_as_sent_and_once(api: httpx.Client, query: str) -> None:
    refused(api.get(f"/?{query}"), 400, query.split("=")[0])


def test_wait_is_plain_ascii_digits(api: httpx.Client) -> None:
    uuid = post_raw(api, json.dumps({"url": URL})).headers["Location"].split("/")[-2]
    for wait in ("nan", "inf", "%D9%A1", "1e3", "%201", "1%0A", "0&wait=0"):
        refused(api.get(f"/{uuid}/response/?wait={wait}"), 400, "wait")


# -- sizes -------------------------------------------------------------------------------------


@pytest.fixture
def small_server(store_config: StoreConfig, store: Store) -> Iterator[ServerThread]:
    server = ServerThread(server_config_for(store_config, max_body=1000))
    try:
        yield server
    finally:
        server.stop()


def test_a_body_over_max_body_is_413(small_server: ServerThread, store: Store) -> None:
    with httpx.Client(base_url=small_server.url) as api:
        padded = json.dumps({"url": URL, "data": "x" * 1500})
        refused(post_raw(api, padded), 413)  # read and thrown away: the client sees the answer
        chunked = iter([padded[:600].encode(), padded[600:].encode()])  # no Content-Length
        refused(post_raw(api, chunked), 413)  # type: ignore[arg-type]
        assert post_raw(api, json.dumps({"url": URL})).status_code == 303
    assert _raw_exchange(small_server, b"x" * 50_000).startswith(b"HTTP/1.1 413 ")
    assert stored(store) == 1


def _raw_exchange(server: ServerThread, body: bytes) -> bytes:
    """Send headers declaring a body far over the limit, as curl does (Expect: 100-continue);
    the answer must come before any of the body is sent."""
    host, port = server.sockets[0].getsockname()[:2]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        return sock.recv(65536)


def test_a_body_that_is_not_json_is_415(api: httpx.Client, store: Store) -> None:
    broken = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--XX'
    answer = api.post(
        "/", content=broken, headers={"Content-Type": "multipart/form-data; boundary=XX"}
    )
    refused(answer, 415)
    refused(api.post("/", files={"a": b"b"}), 415)
    assert stored(store) == 0


def test_a_page_ends_before_it_holds_too_many_bytes(api: httpx.Client, store: Store) -> None:
    big = json.dumps({"url": URL, "data": "x" * (PAGE_BYTES // 3)})
    uuids = [post_raw(api, big).headers["Location"].split("/")[-2] for _ in range(5)]
    walked = list(pages(api, "/?limit=1000"))
    for answer in walked:
        assert len(answer.content) < PAGE_BYTES + 100_000 or len(answer.json()) == 1
    seen = [item["uuid"] for answer in walked for item in answer.json()]
    assert seen == uuids[::-1] and len(walked) > 1, "each once, newest first, on several pages"
    small = api.get("/?limit=1000&fields=uuid,status")
    assert [item["uuid"] for item in small.json()] == uuids[::-1], "a light page is one page"
    assert "next" not in small.links and len(small.content) < 5000


# -- one `id`, many POSTs at once --------------------------------------------------------------


def test_a_storm_of_one_id_leaves_the_last_accepted(
    api: httpx.Client, server: ServerThread
) -> None:
    async def storm() -> list[str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            body = json.dumps({"url": URL, "id": "storm"})
            answers = await asyncio.gather(*(post_raw_async(client, body) for _ in range(300)))
        assert {a.status_code for a in answers} == {303}
        return [a.headers["Location"].split("/")[-2] for a in answers]

    uuids = asyncio.run(storm())
    items = api.get("/?status=all&limit=1000").json()
    assert sorted(item["uuid"] for item in items) == sorted(uuids)
    alive = [item for item in items if item["status"] == Status.QUEUED]
    assert len(alive) == 1, "exactly one survives"
    (survivor,) = alive
    assert "replaced_by" not in survivor
    assert survivor["time"] == max(item["time"] for item in items)
    assert survivor["uuid"] == items[0]["uuid"], "the one Redis accepted last"
    by_uuid = {item["uuid"]: item for item in items}
    for item in items:
        if item is not survivor:
            assert item["status"] == Status.CANCELED
            assert item["replaced_by"] in by_uuid  # which replaced it, in turn
            assert by_uuid[item["replaced_by"]]["time"] >= item["time"]


async def post_raw_async(client: httpx.AsyncClient, body: str) -> httpx.Response:
    return await client.post("/", content=body, headers={"Content-Type": "application/json"})


# -- browsers and DNS rebinding ----------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:5000", "127.0.0.1.nip.io", "[::2]:80"]
)
def test_a_host_this_server_does_not_answer_to_is_refused(
    api: httpx.Client, store: Store, host: str
) -> None:
    """A page on attacker.example rebound to 127.0.0.1 gets nothing, and stores nothing."""
    answer = post_raw(api, json.dumps({"url": URL}), Host=host)
    assert "attacker" not in answer.headers.get("Location", "")
    refused(answer, 400)
    refused(api.get("/?status=all", headers={"Host": host}), 400)
    assert stored(store) == 0


@pytest.mark.parametrize("host", ["localhost:5000", "127.0.0.1", "127.0.0.2:80", "[::1]:5000"])
def test_loopback_names_are_answered(api: httpx.Client, host: str) -> None:
    assert post_raw(api, json.dumps({"url": URL}), Host=host).status_code == 303


def test_allowed_hosts_add_names(store_config: StoreConfig, store: Store) -> None:
    server = ServerThread(server_config_for(store_config, allowed_hosts=("htq.internal",)))
    try:
        with httpx.Client(base_url=server.url) as api:
            answer = post_raw(api, json.dumps({"url": URL}), Host="htq.internal:5000")
            assert answer.headers["Location"].startswith("http://htq.internal:5000/")
            refused(post_raw(api, json.dumps({"url": URL}), Host="other.internal"), 400)
    finally:
        server.stop()


def test_a_web_page_may_not_call_unless_its_origin_is_allowed(
    api: httpx.Client, store: Store
) -> None:
    answer = post_raw(api, json.dumps({"url": URL}), Origin="https://evil.example")
    assert refused(answer, 403)["error"] == "forbidden"
    refused(api.get("/", headers={"Origin": "https://evil.example"}), 403)
    assert stored(store) == 0


def test_allowed_origins_get_cors_answers(store_config: StoreConfig, store: Store) -> None:
    app = "https://app.example"
    server = ServerThread(server_config_for(store_config, cors_origins=(app,)))
    try:
        with httpx.Client(base_url=server.url) as api:
            preflight = api.options(
                "/",
                headers={
                    "Origin": app,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == app
            assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
            assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
            answer = post_raw(api, json.dumps({"url": URL}), Origin=app)
            assert answer.status_code == 303
            assert answer.headers["Access-Control-Allow-Origin"] == app
            assert "Location" in answer.headers["Access-Control-Expose-Headers"]
            refused(post_raw(api, json.dumps({"url": URL}), Origin="https://other.example"), 403)
    finally:
        server.stop()


# -- limits ------------------------------------------------------------------------------------


def test_timeout_is_bounded_by_max_timeout(
    api: httpx.Client, store: Store, store_config: StoreConfig
) -> None:
    message = refused(post_raw(api, json.dumps({"url": URL, "timeout": 3601})), 422, "timeout")
    assert "3600" in message["message"] and "--max-timeout" in message["message"]
    assert post_raw(api, json.dumps({"url": URL, "timeout": 3600})).status_code == 303
    server = ServerThread(server_config_for(store_config, max_timeout=7200))
    try:
        with httpx.Client(base_url=server.url) as longer:
            assert post_raw(longer, json.dumps({"url": URL, "timeout": 7200})).status_code == 303
    finally:
        server.stop()


def test_headers_are_bounded_in_number_and_size(api: httpx.Client, store: Store) -> None:
    many = {f"X-{n}": "1" for n in range(101)}
    refused(post_raw(api, json.dumps({"url": URL, "headers": many})), 422, "headers")
    large = {"X-Big": "x" * (64 * 1024)}
    refused(post_raw(api, json.dumps({"url": URL, "headers": large})), 422, "headers")
    assert stored(store) == 0
    fine = {f"X-{n}": "y" * 100 for n in range(100)}
    assert post_raw(api, json.dumps({"url": URL, "headers": fine})).status_code == 303


# -- secrets -----------------------------------------------------------------------------------

SECRET = {
    "url": "https://user:hunter2@api.example/v1",
    "headers": {"Authorization": "Bearer s3cret", "cookie": "sid=abc", "X-Plain": "shown"},
}


def test_credentials_are_stored_but_shown_masked(api: httpx.Client, store: Store) -> None:
    uuid = post_raw(api, json.dumps(SECRET)).headers["Location"].split("/")[-2]
    shown = api.get(f"/{uuid}/").json()
    listed = api.get("/", params={"fields": "url,headers"}).json()[0]
    for resource in (shown, listed):
        assert resource["headers"] == {
            "Authorization": "********", "cookie": "********", "X-Plain": "shown"
        }  # fmt: skip
        assert resource["url"] == "https://user:********@api.example/v1"
        assert "hunter2" not in json.dumps(resource) and "s3cret" not in json.dumps(resource)
    kept = store.get(uuid)  # what the worker sends
    assert kept is not None and kept["headers"]["Authorization"] == "Bearer s3cret"
    assert kept["url"] == SECRET["url"]


def test_show_secrets_shows_them(store_config: StoreConfig, store: Store) -> None:
    server = ServerThread(server_config_for(store_config, show_secrets=True))
    try:
        with httpx.Client(base_url=server.url) as api:
            uuid = post_raw(api, json.dumps(SECRET)).headers["Location"].split("/")[-2]
            assert api.get(f"/{uuid}/").json()["headers"]["Authorization"] == "Bearer s3cret"
    finally:
        server.stop()


def test_refusals_keep_the_connection_usable(api: httpx.Client) -> None:
    """A refusal decided before the request was read made Tornado close the connection after
    answering: a client sending its next request on it read a reset, now and then."""
    evil = {"Origin": "https://evil.example"}
    for _ in range(100):
        refused(api.get("/", headers=evil), 403)
        refused(api.options("/", headers=evil), 403)
        refused(post_raw(api, json.dumps({"url": URL}), **evil), 403)
        assert api.get("/stats").status_code == 200

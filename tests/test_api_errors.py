"""What the API answers to input it refuses: JSON errors with the README's codes, nothing stored."""

from __future__ import annotations

import json

import httpx
import pytest

from htq.config import StoreConfig
from htq.store import Store
from tests.support.api import TUTORIAL_URL, queue
from tests.support.server import ServerThread, server_config_for

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
    ('{"url": "http://x/", "callbak": "http://y/"}', 422, "invalid", "Unknown field(s): callbak"),
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
        response = httpx.post(
            server.url, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"
        assert store.stats()["total"] == 0
    finally:
        server.stop()


def test_a_body_that_is_not_json_is_415(api: httpx.Client) -> None:
    response = api.post("/", content=b"<xml/>", headers={"Content-Type": "application/xml"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "kind", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data", None]
)
def test_only_json_is_accepted(api: httpx.Client, store: Store, kind: str | None) -> None:
    """What a web page may send cross-site without asking (and curl -d without -H) is refused."""
    headers = {"Content-Type": kind} if kind else {}
    response = api.post("/", content=json.dumps({"url": TUTORIAL_URL}), headers=headers)
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
    assert store.stats()["total"] == 0


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
    assert wrong.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    uuid = "00000000-0000-4000-8000-000000000000"
    for path, allowed in [
        ("/stats", "GET, HEAD, OPTIONS"),
        (f"/{uuid}/", "GET, HEAD, DELETE, OPTIONS"),
        (f"/{uuid}/retry/", "POST, OPTIONS"),
    ]:
        answer = api.request("TRACE", path)
        assert answer.status_code == 405 and answer.headers["Allow"] == allowed, path
    head = api.head(f"/{uuid}/retry/")
    assert head.status_code == 405 and head.headers["Allow"] == "POST, OPTIONS"


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

"""Generated input against the real server and Redis: no 5xx, every error in the JSON shape with
the code the README names, and nothing stored for a refused request.

Bounded: a few thousand calls in all, well under 30 s. A failure prints the smallest input
hypothesis found, to be kept below as an example of its own.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from htq.models import OWNED_HEADERS, REQUEST_FIELDS
from htq.store import LISTED_FIELDS, Store

# The error code of each status, as the README's API reference names them.
CODES = {
    400: {"malformed", "bad_request"},
    403: {"forbidden", "loop"},
    404: {"not_found"},
    409: {"conflict"},
    405: {"method_not_allowed"},
    413: {"too_large"},
    415: {"unsupported_media_type"},
    422: {"invalid"},
}
FUZZ = settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs every run: a failure here is a bug, never bad luck
)

# Text that has broken parsers: surrogates, controls, other scripts' digits, long runs.
NASTY = st.sampled_from(
    [
        "\ud800",
        "a\udfffb",
        "\x00",
        "GET\n",
        "X-A\r\n",
        "²",
        "١٢",
        "€",
        "é",
        "\U0001f600",
        " ",
        "",
        "chunked",
        "NaN",
        "http://127.0.0.1:9/",
        "https://[::1]:0/",
        "http://%zz/",
        "x" * 9000,
    ]
)
TEXT = st.one_of(NASTY, st.text(max_size=40))
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Addresses the outbound guard refuses, in the forms a resolver takes.
REFUSED_URLS = st.sampled_from(
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://169\u3002254\u3002169\u3002254/",  # IDNA dots (UTS 46)
        "http://169\uff0e254\uff0e169\uff0e254/",
        "http://metadata\uff61google\uff61internal/",
        "http://\uff11\uff16\uff19.254.169.254/",  # full-width digits: not a host IDNA takes
        "http://user:pw@169.254.169.254/",
    ]
)
HEADER_NAMES = st.one_of(NASTY, st.sampled_from(sorted(OWNED_HEADERS)), st.text(max_size=12))
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "url": st.one_of(TEXT, st.just("http://127.0.0.1:9/"), REFUSED_URLS, JSON),
    "method": st.one_of(TEXT, st.sampled_from(["GET", "post", "DELETE", "SET", "propfind"]), JSON),
    "headers": st.one_of(st.dictionaries(HEADER_NAMES, st.one_of(TEXT, JSON), max_size=3), JSON),
    "data": JSON,
    "timeout": st.one_of(NUMBERS, JSON),
    "id": st.one_of(TEXT, st.integers(), JSON),
    "retries": st.one_of(st.integers(min_value=-5, max_value=200), JSON),
    "retry_on": st.one_of(st.lists(st.integers(min_value=0, max_value=1000), max_size=4), JSON),
    "backoff": st.one_of(
        st.fixed_dictionaries({}, optional={"min": NUMBERS, "max": NUMBERS, "factor": NUMBERS}),
        JSON,
    ),
    "delay": st.one_of(NUMBERS, JSON),
    "not_before": st.one_of(
        st.integers(min_value=-1, max_value=2**60),
        st.sampled_from(
            ["2026-12-01T09:00:00Z", "2026-12-01T09:00:00", "tomorrow", "9999-12-31T00:00:00+00:00"]
        ),
        TEXT,
        JSON,
    ),
    "callback": st.one_of(TEXT, st.just("http://127.0.0.1:9/cb"), REFUSED_URLS, JSON),
    "failure_callback": st.one_of(TEXT, st.just("http://127.0.0.1:9/f"), REFUSED_URLS, JSON),
}
DESCRIPTIONS = st.fixed_dictionaries(
    {"url": FIELD_VALUES["url"]},
    optional={name: FIELD_VALUES[name] for name in sorted(REQUEST_FIELDS - {"url"})}
    | {"extra": JSON},
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/x+json",
     "multipart/form-data; boundary=x", "image/png", ""]
)  # fmt: skip


def _body(description: dict[str, Any]) -> bytes:
    # allow_nan: NaN and Infinity reach the server as the bare words a careless client sends.
    return json.dumps(description, allow_nan=True).encode()


BODIES = st.one_of(
    DESCRIPTIONS.map(_body),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
)
# Idempotency keys: a few reused (replays and conflicts), and ones that are not keys.
IDEMPOTENCY_KEYS = st.one_of(
    st.none(),
    st.sampled_from(["k", "order-42", "a b", "x" * 256, ""]),
    # what HTTP can carry: no whitespace at either end
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20).filter(
        lambda key: key == key.strip()
    ),
)
QUERY_VALUES = st.one_of(NASTY, st.text(max_size=10), st.integers().map(str))
QUERIES = st.dictionaries(
    st.sampled_from(["status", "limit", "cursor", "fields", "wait", "x"]), QUERY_VALUES, max_size=3
)
UNKNOWN = "/00000000-0000-0000-0000-000000000000/"
PATHS = st.sampled_from(
    ["/", "/stats", UNKNOWN, "/nope/", "/%ff/", "/a/b/c/d", f"{UNKNOWN}attempts/",
     f"{UNKNOWN}retry/", "/healthz"]
)  # fmt: skip


def check(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.request.method == "HEAD":
        assert answer.content == b"", "HEAD answers no body"
    elif answer.status_code >= 400:
        body = answer.json()
        assert set(body) <= {"error", "message", "field"} and body["message"], body
        assert body["error"] in CODES[answer.status_code], body


def count(store: Store) -> int:
    return int(store.redis.zcard(store.keys.all))


# What an htq worker's requests carry (refused at POST /: 403 loop), and what others' do.
AGENTS = st.one_of(
    st.none(), st.sampled_from(["htq/0.3.0", "HTQ/1", "python-httpx/0.28.1", "curl/8.5", "htq"])
)


@FUZZ
@given(
    body=BODIES,
    content_type=CONTENT_TYPES,
    key=IDEMPOTENCY_KEYS,
    agent=AGENTS,
    marked=st.booleans(),
)
@example(
    body=b'{"url": "http://127.0.0.1:9/", "id": "\\ud800"}',
    content_type="application/json",
    key=None,
    agent=None,
    marked=False,
)
@example(
    body=b'{"url": "http://127.0.0.1:9/", "data": [NaN]}',
    content_type="application/json",
    key=None,
    agent=None,
    marked=False,
)
@example(body=b"[" * 50_000, content_type="application/json", key="k", agent=None, marked=False)
@example(
    body=b'{"url": "http://127.0.0.1:9/"}',
    content_type="application/json",
    key=None,
    agent="htq/0.3.0",
    marked=False,
)
def test_posted_descriptions(
    api: httpx.Client,
    store: Store,
    body: bytes,
    content_type: str,
    key: str | None,
    agent: str | None,
    marked: bool,
) -> None:
    before = count(store)
    headers = {"Content-Type": content_type} if content_type else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if agent is not None:
        headers["User-Agent"] = agent
    if marked:
        headers["Htq-Attempt"] = "2"
    answer = api.post("/", content=body, headers=headers)
    check(answer)
    if marked or (agent or "").lower().startswith("htq/"):
        assert answer.status_code == 403 and answer.json()["error"] == "loop", answer.text
    if answer.status_code == 303:
        replayed = answer.headers.get("Idempotent-Replayed") == "true"
        assert count(store) == before + (0 if replayed else 1)
        assert api.get(answer.headers["Location"]).status_code == 200
    else:
        assert count(store) == before, "nothing stored for a refused request"


@FUZZ
@given(
    path=PATHS,
    query=QUERIES,
    method=st.sampled_from(["GET", "HEAD", "DELETE", "PUT", "PATCH", "POST"]),
)
@example(path="/", query={"cursor": "²"}, method="GET")
@example(path="/", query={"limit": " 5"}, method="GET")
@example(path="/", query={"limit": "5.0"}, method="GET")
@example(path="/", query={"status": "\ud800"}, method="GET")
def test_queries(
    api: httpx.Client, store: Store, path: str, query: dict[str, str], method: str
) -> None:
    before = count(store)
    # Percent-encoded by hand: a lone surrogate goes out as the bytes UTF-8 would give it.
    encoded = "&".join(
        f"{quote(name)}={quote(value.encode('utf-8', 'surrogatepass'))}"
        for name, value in query.items()
    )
    check(api.request(method, f"{path}?{encoded}"))
    assert count(store) == before


@pytest.mark.parametrize("field", sorted(LISTED_FIELDS))
def test_every_listed_field_can_be_asked_for(api: httpx.Client, field: str) -> None:
    api.post("/", json={"url": "http://127.0.0.1:9/", "id": "x", "data": {"a": 1}})
    answer = api.get("/", params={"fields": field, "status": "all"})
    check(answer)
    assert answer.status_code == 200 and answer.json()

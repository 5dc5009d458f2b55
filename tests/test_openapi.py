"""The contract: `GET /openapi.json` is a valid OpenAPI 3.1 document that names every route, and
the live server (real Tornado, real Valkey, no worker) holds to it: under about a thousand
calls schemathesis generates from it, and in every state a call can find a request in.

The document is fetched from the server under test, so what is checked is what clients get.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from schemathesis import BaseSchema, Case, CheckFunction, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tornado.routing import PathMatches

from htq.config import OutboundConfig, ServerConfig, StoreConfig
from htq.delivery import Backoff, Delivery
from htq.models import MAX_TIMEOUT, REQUEST_FIELDS, Status, now_ms, response_resource
from htq.server.app import make_app
from htq.server.base import BaseHandler
from htq.server.openapi import document
from htq.store import LISTED_FIELDS, AsyncStore, Claim, Store
from tests.support.api import TUTORIAL_URL, queue
from tests.support.redis_server import ValkeyProcess
from tests.support.server import ServerThread, server_config_for

#: The status code, content type, headers and body the document gives for an answer.
DOCUMENTED: list[CheckFunction] = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: What every answer is held to (but while Redis is down): that, and no server error.
CONFORMANCE = [not_a_server_error, *DOCUMENTED]
#: Generated calls also check that what the document calls invalid is refused.
FUZZ_CHECKS = [*CONFORMANCE, negative_data_rejection]
#: Examples per operation and generation mode, beside schemathesis's coverage cases: about a
#: thousand calls in all (the test reports the count), a few seconds on loopback.
EXAMPLES = 40
TOKEN = "contract-token-0123456789abcdef"
UNKNOWN = "00000000-0000-4000-8000-000000000000"  # a request id never handed out
HOUR_MS = 3_600_000
#: Every delivery field a description may give but `delay` and `not_before` (which differ).
DELIVERY = {
    "retries": 2,
    "retry_on": [503, 500],
    "backoff": {"min": 0.5, "factor": 3},
    "callback": "http://hooks.example.com/done",
    "failure_callback": "https://hooks.example.com/failed",
}
#: Bad values of each delivery field (each a `422` whose `field` names it).
BAD_DELIVERY: dict[str, list[Any]] = {
    "retries": [101, True],
    "retry_on": [[99], 503],
    "backoff": [{"min": 0}, {"jitter": 1}, {"min": 9, "max": 8}],
    "delay": [-1],
    "not_before": ["2026-12-01T09:00:00", 2**53],  # no zone; too late
    "callback": ["x"],
    "failure_callback": ["http://169.254.169.254/latest/meta-data/"],  # the outbound guard's
}
#: The keys of an OpenAPI path item that are operations.
VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "trace")


# -- the document --------------------------------------------------------------------------


@pytest.mark.parametrize("any_method", [False, True])
def test_the_document_is_valid_openapi_3_1(any_method: bool) -> None:
    spec = document(max_timeout=MAX_TIMEOUT, max_body=1024, any_method=any_method)
    validate(spec)  # raises on any error; the 3.1 validator, from "openapi": "3.1.0"
    assert spec["openapi"] == "3.1.0"
    broken = {**spec, "paths": {"/x": {"get": {"responses": {"200": {}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)  # the validator does look (a response needs a description)


def test_the_server_serves_the_document_with_its_own_limits(
    store_config: StoreConfig, store: Store
) -> None:
    outbound = OutboundConfig(any_method=True)
    config = server_config_for(store_config, max_timeout=120, max_body=2048, outbound=outbound)
    server = ServerThread(config)
    try:
        answer = httpx.get(f"{server.url}openapi.json")
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == document(max_timeout=120, max_body=2048, any_method=True)
        fields = answer.json()["components"]["schemas"]["RequestDescription"]["properties"]
        assert fields["timeout"]["maximum"] == 120
        assert "--any-method" in fields["method"]["description"]
    finally:
        server.stop()


async def test_every_route_is_documented_and_every_documented_route_served(
    store_config: StoreConfig,
) -> None:
    """A route added to make_app without its description here fails, and the reverse."""
    store = AsyncStore(store_config)
    try:
        app = make_app(ServerConfig(host="127.0.0.1", port=0, store=store_config), store)
    finally:
        await store.close()
    rules = app.wildcard_router.rules
    assert all(isinstance(rule.matcher, PathMatches) for rule in rules)
    served = {
        (_route_path(rule.matcher.regex.pattern), method)
        for rule in rules
        if isinstance(rule.matcher, PathMatches)
        for method in _implemented(rule.target)
    }
    spec = document(max_timeout=MAX_TIMEOUT, max_body=1024)
    documented = {
        (path.rstrip("/") or "/", method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method in VERBS
    }
    assert served == documented


def test_every_field_is_documented() -> None:
    """A field added to the request description or the request resource without its
    description in the document fails here."""
    schemas = document(max_timeout=MAX_TIMEOUT, max_body=1024)["components"]["schemas"]
    assert set(schemas["RequestDescription"]["properties"]) == REQUEST_FIELDS
    every = Delivery(1, (500,), Backoff(2), "http://a.example/", "http://b.example/")
    shown = {*every.to_stored(), "callback_result"}  # the delivery fields the resource shows
    assert set(schemas["ListedRequest"]["properties"]) == LISTED_FIELDS | shown
    assert set(schemas["RequestResource"]["properties"]) == LISTED_FIELDS - {"links"} | shown


def _route_path(pattern: str) -> str:
    """`/([^/]+)/status/?$` -> `/{uuid}/status`: a route's regular expression as a path."""
    path = pattern.removesuffix("$").removesuffix("/?").replace("([^/]+)", "{uuid}")
    return path.replace("\\.", ".").rstrip("/") or "/"


def _implemented(handler: Any) -> set[str]:
    """The methods a handler answers (what its 405s list in `Allow`: HEAD wherever GET is)."""
    assert issubclass(handler, BaseHandler)
    return set(handler.allowed_methods())


# -- requests in every state ---------------------------------------------------------------


@dataclass(frozen=True)
class Seeds:
    """A request in each state a call can find one in (the worker's part played by hand)."""

    queued: str  # with every field: headers (a credential among them), JSON data, id, timeout
    scheduled: str  # with every delivery field, and due in an hour
    waiting: str  # its first attempt failed; due again in an hour
    pending: str
    success: str
    retried: str  # success at its second attempt (the first timed out), called back
    binary: str  # base64 and truncated
    error: str
    timeout: str  # its failure callback got no answer
    canceled: str
    replaced: str  # canceled by a later request with the same id: has `replaced_by`
    deleted: str  # success, its response deleted
    to_cancel: str  # spares for the DELETEs and the retry
    to_clear: str
    to_retry: str

    def all(self) -> list[str]:
        return list(vars(self).values())


@pytest.fixture
def seeds(api: httpx.Client, store: Store) -> Seeds:
    plain = {"url": TUTORIAL_URL}

    def ended(claim: Claim, status: Status, **fields: Any) -> dict[str, Any]:
        return response_resource(claim.uuid, status, time_ms=now_ms(), elapsed_ms=12.5, **fields)

    def taken(description: dict[str, Any]) -> Claim:
        uuid = queue(api, description)
        assert store.wait_for_work(1) == uuid
        claim = store.claim(uuid, "contract-worker", 60)
        assert claim is not None
        return claim

    def answered(status: Status, description: dict[str, Any] = plain, **fields: Any) -> str:
        claim = taken(description)
        assert store.complete(claim, ended(claim, status, **fields))
        return claim.uuid

    def called_back(uuid: str, result: dict[str, Any]) -> None:
        assert store.wait_for_callback(1) == uuid
        job = store.take_callback(uuid, 60)
        assert job is not None and store.called_back(job, result)

    ok = {"code": 200, "reason": "OK", "headers": {"Content-Type": "text/plain"}, "data": "hi"}
    success, deleted, to_clear = (answered(Status.SUCCESS, **ok) for _ in range(3))
    assert api.delete(f"/{deleted}/response/").status_code == 204
    binary = answered(
        Status.SUCCESS, **{**ok, "data": "AAEC", "encoding": "base64", "truncated": True}
    )
    error, to_retry = (answered(Status.ERROR, message="Could not connect") for _ in range(2))
    timeout = answered(
        Status.TIMEOUT,
        {**plain, "failure_callback": DELIVERY["failure_callback"]},
        message="No complete response within 60 seconds.",
    )
    called_back(timeout, {"url": DELIVERY["failure_callback"], "attempts": 3, "error": "Timed out"})
    first = taken({**plain, **DELIVERY})
    assert store.retry(first, ended(first, Status.TIMEOUT, message="Too slow"), now_ms())
    assert store.promote()[0] == 1 and store.wait_for_work(1) == first.uuid
    second = store.claim(first.uuid, "contract-worker", 60)
    assert second is not None and store.complete(second, ended(second, Status.SUCCESS, **ok))
    called_back(first.uuid, {"url": DELIVERY["callback"], "attempts": 1, "code": 204})
    waiting = taken({**plain, "retries": 1})
    failed = ended(waiting, Status.ERROR, message="Could not connect")
    assert store.retry(waiting, failed, now_ms() + HOUR_MS)
    pending = taken(plain)  # claimed, never answered
    canceled = queue(api, plain)
    assert api.delete(f"/{canceled}/").status_code == 204
    replaced = queue(api, {**plain, "id": "contract"})
    queue(api, {**plain, "id": "contract"})
    rich = {
        "url": "https://user:secret@example.com/path?q=1",
        "method": "PUT",
        "headers": {"Authorization": "Bearer secret", "X-Note": "café"},
        "data": {"list": [1, 2.5, None, True], "text": "é"},
        "timeout": 2.5,
        "id": 42,
    }
    return Seeds(
        queued=queue(api, rich),
        scheduled=queue(api, {**plain, **DELIVERY, "delay": 3600}),
        waiting=waiting.uuid,
        pending=pending.uuid,
        success=success,
        retried=first.uuid,
        binary=binary,
        error=error,
        timeout=timeout,
        canceled=canceled,
        replaced=replaced,
        deleted=deleted,
        to_cancel=queue(api, plain),
        to_clear=to_clear,
        to_retry=to_retry,
    )


@pytest.fixture
def contract(server: ServerThread, seeds: Seeds) -> BaseSchema:
    """The document the server serves, generating valid and invalid calls."""
    schema = schemathesis.openapi.from_url(f"{server.url}openapi.json")
    schema.config.update(base_url=server.url, request_timeout=10)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return schema


# -- fuzzing -------------------------------------------------------------------------------


@pytest.fixture
def tally(capsys: pytest.CaptureFixture[str]) -> Iterator[Counter[tuple[str, int]]]:
    """The generated calls, by operation and status: reported, and bounded below so that a
    change that quietly stops the generation (a filter refusing everything) fails."""
    calls: Counter[tuple[str, int]] = Counter()
    yield calls
    statuses = Counter(status for _, status in calls.elements())
    with capsys.disabled():
        print(f"\nschemathesis: {calls.total()} calls, by status {dict(sorted(statuses.items()))}")
    assert calls.total() >= 800, f"only {calls.total()} calls were generated"


fuzzed = schemathesis.pytest.from_fixture("contract")


@fuzzed.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same calls every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_generated_calls_get_no_server_error_and_documented_answers(
    case: Case[Any], tally: Counter[tuple[str, int]]
) -> None:
    # A valid Idempotency-Key is made one of its own (still valid), or most generated
    # descriptions would meet a key used before and be refused (409, given by hand below).
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if case.headers and key is not None and re.fullmatch(r"[\x21-\x7e]{1,200}", key):
        case.headers["Idempotency-Key"] = f"{key}.{tally.total()}"
    response = case.call_and_validate(checks=FUZZ_CHECKS)
    tally[(case.operation.label, response.status_code)] += 1


# -- every documented answer, given --------------------------------------------------------


@dataclass
class Caller:
    """Calls operations of the document with chosen inputs, holds each answer to it, and
    records which (method, path, status) were seen."""

    schema: BaseSchema
    seen: set[tuple[str, str, int]]
    checks: list[CheckFunction] = field(default_factory=lambda: CONFORMANCE)

    def __call__(
        self,
        label: str,
        base_url: str,
        *,
        expect: int,
        uuid: str | None = None,
        headers: dict[str, str] | None = None,
        **case: Any,
    ) -> Response:
        method, path = label.split(" ", 1)
        operation = self.schema[path][method]
        if uuid is not None:
            case["path_parameters"] = {"uuid": uuid}
        if label == "POST /" and "body" not in case:
            case["body"] = {"url": TUTORIAL_URL}
        made = operation.Case(**case)
        response = made.call(base_url=base_url, headers=headers)
        made.validate_response(response, checks=self.checks)
        assert response.status_code == expect, (label, headers, case, response.text)
        self.seen.add((method, path, response.status_code))
        if method == "GET":  # and its HEAD: the same answer without the body
            head = self.schema[path]["HEAD"].Case(**case)
            bodiless = head.call(base_url=base_url, headers=headers)
            head.validate_response(bodiless, checks=self.checks)
            assert bodiless.status_code == expect and bodiless.content in (b"", None), label
            length = _header(bodiless, "Content-Length")
            assert length == _header(response, "Content-Length"), label
            self.seen.add(("HEAD", path, bodiless.status_code))
        return response

    def codes(self, label: str) -> set[int]:
        """The status codes the document gives for an operation."""
        return {
            code for method, path, code in _documented(self.schema) if label == f"{method} {path}"
        }

    def success(self, label: str) -> int:
        """The answer to a valid call on a request that exists (the lowest 2xx or 3xx)."""
        return min(code for code in self.codes(label) if code < 400)

    def either(self, label: str, refusal: int) -> int:
        """`refusal` where the document gives it, the success code elsewhere."""
        return refusal if refusal in self.codes(label) else self.success(label)


def _header(answer: Response, name: str) -> str:
    """A header of a schemathesis Response ("" if absent): its names are lower-case, its
    values lists."""
    return ", ".join(answer.headers.get(name.lower(), []))


def _all_operations(schema: BaseSchema) -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in VERBS
    ]


def _documented(schema: BaseSchema) -> set[tuple[str, str, int]]:
    return {
        (method.upper(), path, int(status))
        for path, item in schema.raw_schema["paths"].items()
        for method, operation in item.items()
        if method in VERBS
        for status in operation["responses"]
    }


def test_every_documented_answer_is_given_as_documented(
    contract: BaseSchema, server: ServerThread, seeds: Seeds, store_config: StoreConfig
) -> None:
    """Each status code the document gives for each operation is answered at least once, in
    the situation it describes, and holds to the document; no other is."""
    call = Caller(contract, set())
    open_url = server.url
    operations = _all_operations(contract)
    spares = {
        "DELETE /{uuid}/": seeds.to_cancel,
        "DELETE /{uuid}/response/": seeds.to_clear,
        "POST /{uuid}/retry/": seeds.to_retry,
    }
    for label in operations:
        # As a client sees it: a valid call, on a request that exists.
        uuid = spares.get(label, seeds.success)
        call(label, open_url, uuid=uuid, expect=call.success(label))
        # A page rebound to a loopback address, and one from a foreign origin.
        rebound = {"Host": "attacker.example:80"}
        call(label, open_url, uuid=seeds.success, headers=rebound, expect=400)
        foreign = {"Origin": "https://attacker.example"}
        call(label, open_url, uuid=seeds.success, headers=foreign, expect=403)
    _requests_in_every_state(call, open_url, seeds)
    _delivery(call, open_url, seeds)
    _listings_and_bodies(call, open_url)
    _idempotency(call, open_url)
    _with_a_token_and_a_small_body_limit(call, operations, store_config, seeds)
    _with_redis_down(call, operations, store_config)
    missing = _documented(contract) - call.seen
    assert not missing, f"documented but never answered: {sorted(missing)}"
    undocumented = call.seen - _documented(contract)
    assert not undocumented, f"answered but not documented: {sorted(undocumented)}"


def _requests_in_every_state(call: Caller, url: str, seeds: Seeds) -> None:
    for uuid in seeds.all():
        for label in ("GET /{uuid}/", "GET /{uuid}/status/", "GET /{uuid}/attempts/"):
            call(label, url, uuid=uuid, expect=200)
    shown = call("GET /{uuid}/", url, uuid=seeds.queued, expect=200).json()
    assert shown["headers"]["Authorization"] == "********" and ":********@" in shown["url"]
    assert shown["id"] == "42" and shown["method"] == "put"
    assert "replaced_by" in call("GET /{uuid}/", url, uuid=seeds.replaced, expect=200).json()
    for uuid in (seeds.success, seeds.binary, seeds.error, seeds.timeout):
        call("GET /{uuid}/response/", url, uuid=uuid, expect=200)
    for uuid in (seeds.canceled, seeds.deleted):
        call("GET /{uuid}/response/", url, uuid=uuid, expect=404)
        call("DELETE /{uuid}/response/", url, uuid=uuid, expect=404)
    for uuid in (seeds.queued, seeds.pending):
        call("GET /{uuid}/response/", url, uuid=uuid, query={"wait": "0"}, expect=202)
    for label in ("GET /{uuid}/", "DELETE /{uuid}/", "GET /{uuid}/status/"):
        call(label, url, uuid=UNKNOWN, expect=404)


def _delivery(call: Caller, url: str, seeds: Seeds) -> None:
    """Retries, schedules, callbacks and attempts, as the request and its attempts show them;
    and a finished request queued again."""

    def shown(uuid: str) -> dict[str, Any]:
        return dict(call("GET /{uuid}/", url, uuid=uuid, expect=200).json())

    def outcomes(uuid: str) -> list[tuple[int, str]]:
        answer = call("GET /{uuid}/attempts/", url, uuid=uuid, expect=200)
        assert _header(answer, "Link") == f'<{url}{uuid}/>; rel="request"'
        return [(attempt["attempt"], attempt["outcome"]) for attempt in answer.json()]

    scheduled = shown(seeds.scheduled)
    assert scheduled["status"] == "queued" and scheduled["due"] > now_ms() + HOUR_MS - 60_000
    assert {name: scheduled[name] for name in DELIVERY} == {
        **DELIVERY,
        "retry_on": [500, 503],
        "backoff": {"min": 0.5, "max": 300, "factor": 3},
    }
    assert "attempts" not in scheduled and outcomes(seeds.scheduled) == []
    waiting = shown(seeds.waiting)
    assert (waiting["status"], waiting["attempts"], waiting["retries"]) == ("queued", 1, 1)
    assert waiting["due"] > now_ms() and outcomes(seeds.waiting) == [(1, "error")]
    retried = shown(seeds.retried)
    assert (retried["attempts"], retried["callback_result"]["code"]) == (2, 204)
    assert outcomes(seeds.retried) == [(1, "timeout"), (2, "success")]
    assert shown(seeds.timeout)["callback_result"]["error"] == "Timed out"
    assert outcomes(seeds.pending) == [(1, "pending")]
    # Queued again (by the first loop): its first attempt is kept, and it is not finished.
    assert shown(seeds.to_retry)["status"] == "queued"
    assert outcomes(seeds.to_retry) == [(1, "error")]
    for uuid in (seeds.to_retry, seeds.pending, seeds.waiting, seeds.scheduled):
        call("POST /{uuid}/retry/", url, uuid=uuid, expect=409)
    call("POST /{uuid}/retry/", url, uuid=seeds.to_cancel, expect=303)  # canceled: retried
    for label in ("GET /{uuid}/attempts/", "POST /{uuid}/retry/"):
        call(label, url, uuid=UNKNOWN, expect=404)
    page = call("GET /", url, query={"fields": "due,attempts"}, expect=200).json()
    assert {seeds.scheduled, seeds.waiting} <= {item["uuid"] for item in page if "due" in item}


def _listings_and_bodies(call: Caller, url: str) -> None:
    page = call("GET /", url, query={"status": "all", "limit": 2}, expect=200)
    assert 'rel="next"' in _header(page, "Link")
    last = call("GET /", url, query={"status": "all", "cursor": "1"}, expect=200)
    assert last.json() == [] and _header(last, "Link") == ""
    etag = {"If-None-Match": _header(page, "Etag")}
    call("GET /", url, query={"status": "all", "limit": 2}, headers=etag, expect=304)
    for query in ({"fields": "uuid,status,result"}, {"status": "all", "fields": "links"}):
        call("GET /", url, query=query, expect=200)
    call("GET /", url, query={"limit": "0"}, expect=400)
    text = {"Content-Type": "text/plain"}
    call("POST /", url, headers=text, expect=415)
    call("POST /", url, body={"url": "ftp://example.com/"}, expect=422)
    call("POST /", url, body=[TUTORIAL_URL], expect=400)
    for name, values in BAD_DELIVERY.items():
        for value in values:
            answer = call("POST /", url, body={"url": TUTORIAL_URL, name: value}, expect=422)
            assert answer.json()["field"] == name, (name, value)
    both = {"url": TUTORIAL_URL, "delay": 1, "not_before": now_ms()}
    assert call("POST /", url, body=both, expect=422).json()["field"] == "not_before"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    for when, due in ((tomorrow, True), (tomorrow.replace("+00:00", "Z"), True), (1, False)):
        answer = call("POST /", url, body={"url": TUTORIAL_URL, "not_before": when}, expect=303)
        uuid = _header(answer, "Location").rstrip("/").rsplit("/", 1)[1]
        assert ("due" in call("GET /{uuid}/", url, uuid=uuid, expect=200).json()) is due


def _idempotency(call: Caller, url: str) -> None:
    key = {"Idempotency-Key": "order-42"}
    body = {"url": TUTORIAL_URL, "data": {"a": 1, "b": 2}}
    first = call("POST /", url, headers=key, body=body, expect=303)
    same = {"data": {"b": 2, "a": 1}, "url": TUTORIAL_URL}  # the same JSON, written otherwise
    again = call("POST /", url, headers=key, body=same, expect=303)
    assert _header(again, "Location") == _header(first, "Location")
    assert _header(first, "Idempotent-Replayed") == ""
    assert _header(again, "Idempotent-Replayed") == "true"
    call("POST /", url, headers=key, body={**body, "data": None}, expect=409)
    for bad in ("", "x" * 256, "a b", "caf\xe9"):
        answer = call("POST /", url, headers={"Idempotency-Key": bad}, expect=422)
        assert answer.json()["field"] == "Idempotency-Key"


def _with_a_token_and_a_small_body_limit(
    call: Caller, operations: list[str], store_config: StoreConfig, seeds: Seeds
) -> None:
    config = server_config_for(store_config, tokens=(TOKEN,), max_body=4096)
    server = ServerThread(config)
    try:
        for label in operations:  # no token: 401, but where none is needed
            call(label, server.url, uuid=seeds.success, expect=call.either(label, 401))
        for wrong in ("Bearer not-the-token-at-all-0000", "Basic dXNlcjpwYXNz"):
            refused = {"Authorization": wrong}
            answer = call("GET /stats", server.url, headers=refused, expect=401)
            assert _header(answer, "WWW-Authenticate").startswith('Bearer realm="htq"')
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        body = {"url": TUTORIAL_URL, "data": "x" * 5000}
        call("POST /", server.url, headers=bearer, body=body, expect=413)
        call("GET /stats", server.url, headers=bearer, expect=200)
    finally:
        server.stop()


def _with_redis_down(call: Caller, operations: list[str], store_config: StoreConfig) -> None:
    valkey = ValkeyProcess().start()
    server = ServerThread(server_config_for(StoreConfig(valkey.url, store_config.prefix)))
    try:
        valkey.stop()
        down = Caller(call.schema, call.seen, checks=DOCUMENTED)  # a 503 is the answer here
        for label in operations:  # 503 where Redis is needed; the others still answer
            down(label, server.url, uuid=UNKNOWN, expect=call.either(label, 503))
    finally:
        server.stop()
        valkey.close()

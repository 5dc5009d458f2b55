"""The outbound guard: what the worker refuses to send to, and what `POST /` refuses at once.

The address a name resolves to is checked by the worker, which connects to that address only;
a literal address (in any of the forms a resolver takes) is refused at `POST /` with 422.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from htq.config import OutboundConfig, StoreConfig, WorkerConfig
from htq.errors import ConfigError
from htq.models import Status, validate_request
from htq.outbound import Outbound, Refused, Rules, literal_address
from htq.store import Store
from htq.worker import Worker
from htq.worker._exchange import send, send_delete
from htq.worker._in_flight import InFlight
from htq.worker._transport import InterruptibleTransport
from tests.support.api import post
from tests.support.processes import htq
from tests.support.server import ServerThread, server_config_for
from tests.support.store import done, enqueue
from tests.support.target import Target

REDIS = "redis://127.0.0.1:6390/0"


def guard(redis: str = REDIS, **options: object) -> Outbound:
    return Outbound.of(OutboundConfig(**options), redis)  # type: ignore[arg-type]


# -- the rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("10.example", None),
    ],
)
def test_literal_addresses_in_every_form(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (None if found is None else str(found)) == address
    if address is not None and not host.startswith("["):
        # what the resolver makes of it, which is where a connection would go
        assert socket.getaddrinfo(host, 80)[0][4][0] == address


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6390/pwned",  # htq's own Redis
        "http://localhost:6390/",
        "http://2130706433:6390/",
        "http://[::ffff:127.0.0.1]:6390/",
        "http://0.0.0.0:6390/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/",
        # what IDNA (UTS 46) makes of other dots, as the worker's URL parser does
        "http://127\u30020\u30020\u30021:6390/",  # ideographic full stop
        "http://127\uff0e0\uff0e0\uff0e1:6390/",  # full-width full stop
        "http://127\uff610\uff610\uff611:6390/",  # half-width ideographic full stop
        "http://LOCALHOST:6390/",
        "http://169\u3002254\u3002169\u3002254/",
        "http://metadata\u3002google\u3002internal/",
    ],
)
def test_refused_by_default(url: str) -> None:
    with pytest.raises(Refused):
        guard().check_literal(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/", "http://localhost:5000/", "http://10.0.0.5/", "http://[::1]:80/"],
)
def test_loopback_and_private_are_allowed_by_default(url: str) -> None:
    guard().check_literal(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://2130706433/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
        "http://localhost/",
        "http://app.localhost/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # CGNAT
        "http://[fd12::1]/",  # unique-local
        "http://0.0.0.0/",
    ],
)
def test_deny_private_refuses_every_non_public_form(url: str) -> None:
    with pytest.raises(Refused, match="--deny-private"):
        guard(deny_private=True).check_literal(url)


def test_public_addresses_pass_deny_private() -> None:
    for url in ("http://93.184.216.34/", "http://[2606:2800:220:1::]/", "https://example.com/"):
        guard(deny_private=True).check_literal(url)


def test_allow_and_deny_by_name_pattern_and_network() -> None:
    rules = guard(
        deny_private=True,
        allow=("10.1.0.0/16", "*.internal.example", "build.local"),
        deny=("*.evil.example", "203.0.113.0/24", "bad.example"),
    )
    rules.check_literal("http://10.1.2.3/")
    rules.check_address("api.internal.example", ipaddress.ip_address("10.9.9.9"), 80)
    rules.check_address("build.local", ipaddress.ip_address("192.168.0.9"), 80)
    for host, address in [
        ("10.2.0.1", "10.2.0.1"),
        ("x.evil.example", "93.184.216.34"),
        ("bad.example", "93.184.216.34"),
        ("fine.example", "203.0.113.9"),
        ("internal.example", "10.9.9.9"),  # *.domain is the subdomains, not the domain
    ]:
        with pytest.raises(Refused):
            rules.check_name(host)
            rules.check_address(host, ipaddress.ip_address(address), 80)


def test_deny_everything_but_what_is_allowed() -> None:
    rules = guard(deny=("*",), allow=("*.partner.example",))
    rules.check_address("api.partner.example", ipaddress.ip_address("93.184.216.34"), 443)
    with pytest.raises(Refused, match="--deny"):
        rules.check_name("example.com")


def test_redis_is_refused_even_when_allowed() -> None:
    rules = guard(allow=("127.0.0.0/8", "localhost"))
    with pytest.raises(Refused, match="htq's own Redis"):
        rules.check_literal("http://localhost:6390/")
    with pytest.raises(Refused, match="htq's own Redis"):
        rules.check_literal("http://127.0.0.2:6390/")


def test_methods_are_http_methods_unless_any_method() -> None:
    for method in ("GET", "PATCH", "PROPFIND", "QUERY", "OPTIONS"):
        guard().check_method(method)
    for method in ("SET", "EVAL", "FLUSHALL", "X-CUSTOM"):
        with pytest.raises(Refused, match="--any-method"):
            guard().check_method(method)
        guard(any_method=True).check_method(method)


@pytest.mark.parametrize("value", ["exa mple.com", "*bad", "10.0.0.0/33", "a..b", "*.*.x"])
def test_a_bad_rule_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="--deny"):
        Rules.parse([value], "--deny")


def test_bad_rules_on_the_command_line_are_one_line() -> None:
    result = htq("worker", "--deny", "exa mple.com")
    assert result.returncode == 2
    assert "--deny: 'exa mple.com' is not a host" in result.stderr


# -- POST / ----------------------------------------------------------------------------------


@pytest.fixture
def guarded(store_config: StoreConfig, store: Store) -> Iterator[ServerThread]:
    outbound = OutboundConfig(deny=("*.evil.example",))
    server = ServerThread(server_config_for(store_config, outbound=outbound))
    yield server
    server.stop()


@pytest.mark.parametrize(
    "host",
    ["\uff11\uff12\uff17.\uff10.\uff10.\uff11", "\u2460\u2461\u2466.0.0.1", "a\u00adb.example"],
)
def test_a_host_the_worker_cannot_parse_is_422(api: httpx.Client, store: Store, host: str) -> None:
    """Full-width digits and the like: IDNA refuses them, so the worker could never send."""
    for field in ("url", "callback"):
        payload = {"url": "http://192.0.2.1/", field: f"http://{host}:6390/"}
        answer = post(api, payload)
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
        assert "cannot be sent to" in answer.json()["message"]
    assert store.redis.zcard(store.keys.all) == 0


def test_the_redis_attack_is_422_and_nothing_is_queued(
    api: httpx.Client, store: Store, store_config: StoreConfig
) -> None:
    port = int(store_config.redis_url.rsplit(":", 1)[1].split("/")[0])
    answer = post(api, {"url": f"http://127.0.0.1:{port}/pwned", "method": "SET"})
    assert answer.status_code == 422 and answer.json()["field"] == "method"
    for host in ("127.0.0.1", "127\u30020\u30020\u30021", "127\uff0e0\uff0e0\uff0e1"):
        answer = post(api, {"url": f"http://{host}:{port}/pwned", "data": "SET pwned 1"})
        assert answer.status_code == 422 and answer.json()["field"] == "url", host
        assert "htq's own Redis" in answer.json()["message"]
    assert store.redis.zcard(store.keys.all) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/",
        "http://[::ffff:169.254.169.254]/",
        "http://x.evil.example/",
    ],
)
def test_refused_literals_are_422(guarded: ServerThread, store: Store, url: str) -> None:
    with httpx.Client(base_url=guarded.url) as api:
        answer = post(api, {"url": url})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "url" and answer.json()["error"] == "invalid"
    assert store.redis.zcard(store.keys.all) == 0


def test_any_method_lets_others_through(store_config: StoreConfig, store: Store) -> None:
    outbound = OutboundConfig(any_method=True)
    server = ServerThread(server_config_for(store_config, outbound=outbound))
    try:
        with httpx.Client(base_url=server.url) as api:
            answer = post(api, {"url": "http://127.0.0.1:9/", "method": "PURGE"})
        assert answer.status_code == 303
    finally:
        server.stop()


# -- the worker --------------------------------------------------------------------------------


@pytest.fixture
def private_config(config: WorkerConfig) -> WorkerConfig:
    return replace(config, outbound=OutboundConfig(deny_private=True))


def test_a_name_that_resolves_to_a_refused_address_ends_as_error(
    store: Store, target: Target, private_config: WorkerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The server let `localhost` through (its rules differ); the worker resolves and refuses."""
    uuid = enqueue(store, url=f"http://localhost:{target.port}/ip")
    with Worker(private_config):
        assert done(store, uuid) is Status.ERROR
    response = store.response(uuid).resource
    assert response is not None
    assert response["message"].startswith("Refused by htq's outbound guard: localhost (127.0.0.1)")
    assert "--deny-private" in response["message"] and "--allow" in response["message"]
    assert target.requests == [], "nothing reached the target"


def test_the_worker_refuses_what_an_older_server_queued(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    """A request queued without the server's checks (another version, another policy)."""
    refused = enqueue(store, url=f"{target.url}/ip", method="SET")
    sent = enqueue(store, url=f"{target.url}/ip")
    with Worker(config):
        assert done(store, refused) is Status.ERROR
        assert done(store, sent) is Status.SUCCESS
    response = store.response(refused).resource
    assert response is not None and "--any-method" in response["message"]
    assert [r.method for r in target.requests] == ["GET"]


def test_allowed_names_are_sent(store: Store, target: Target, private_config: WorkerConfig) -> None:
    allowed = replace(private_config.outbound, allow=("localhost",))
    uuid = enqueue(store, url=f"http://localhost:{target.port}/ip")
    with Worker(replace(private_config, outbound=allowed)):
        assert done(store, uuid) is Status.SUCCESS


def test_the_cancel_delete_goes_through_the_guard(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    spec = validate_request({"url": f"http://localhost:{target.port}/delay/5"})
    outbound = guard(deny_private=True)
    with InterruptibleTransport(InFlight(), trust_env=False, outbound=outbound) as transport:
        with caplog.at_level(logging.DEBUG, logger="htq"):
            send_delete(transport, spec, "u")
        result = send(transport, spec, "u", 1024)
    assert target.deletes == [] and target.requests == []
    assert "Refused by htq's outbound guard" in caplog.text
    assert result["status"] == "error"


def test_the_connection_goes_only_to_a_checked_address(target: Target) -> None:
    """Of the addresses a name resolves to, only those checked are connected to."""
    spec = validate_request({"url": f"http://localhost:{target.port}/ip"})
    refuse_v6 = guard(deny=("::/0",))
    with InterruptibleTransport(InFlight(), trust_env=False, outbound=refuse_v6) as transport:
        result = send(transport, spec, "u", 1024)
    assert result["status"] == "success" and target.requests[0].peer[0] == "127.0.0.1"
    refuse_all = guard(deny=("127.0.0.0/8", "::/0"))
    with InterruptibleTransport(InFlight(), trust_env=False, outbound=refuse_all) as transport:
        result = send(transport, spec, "u", 1024)
    assert result["status"] == "error" and "--deny" in result["message"]
    assert len(target.requests) == 1


def test_the_readme_attack_never_reaches_redis(
    store: Store, store_config: StoreConfig, config: WorkerConfig
) -> None:
    """Queued behind the server's back (say, by an older htq), SET to Redis is still refused."""
    port = int(store_config.redis_url.rsplit(":", 1)[1].split("/")[0])
    key = f"{store_config.prefix}:pwned"
    uuid = enqueue(store, url=f"http://127.0.0.1:{port}/{key}", data="1")
    with Worker(config):
        assert done(store, uuid) is Status.ERROR
    response = store.response(uuid).resource
    assert response is not None and "htq's own Redis" in response["message"]
    assert store.redis.exists(key) == 0
    assert json.dumps(response)  # stored as any other error


def test_kept_verdicts_are_per_scheme_and_host_part() -> None:
    """check_literal keeps its verdicts (enqueue's hot path): never one host's for another."""
    rules = guard()
    for _ in range(2):  # the second time from the kept verdicts
        with pytest.raises(Refused):
            rules.check_literal("http://127.0.0.1:6390")
        rules.check_literal("http://127.0.0.1:6391")
        rules.check_literal("http://127.0.0.1:639?x")
        with pytest.raises(Refused):
            rules.check_literal("http://127.0.0.1:6390?x#y")
        with pytest.raises(Refused):
            rules.check_literal("https://169.254.169.254/latest")
        rules.check_literal("https://93.184.216.34/latest")

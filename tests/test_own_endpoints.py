"""htq never sends to itself: its Redis and its servers, on every address of this machine, and a
`POST /` sent by an htq worker is refused (a request that queues requests could multiply)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from htq._interfaces import local_addresses
from htq.config import OutboundConfig, StoreConfig, WorkerConfig
from htq.models import USER_AGENT, Status
from htq.outbound import Outbound, Refused
from htq.store import Store, worker_store
from htq.tui.api import ApiClient
from htq.worker import Worker
from tests.support.api import post
from tests.support.processes import HtqProcess, start_server, start_worker
from tests.support.server import ServerThread
from tests.support.store import delete_namespace, done, enqueue
from tests.support.target import Target


def redis_port(store_config: StoreConfig) -> int:
    return int(store_config.redis_url.rsplit(":", 1)[1].split("/")[0])


def non_loopback() -> list[str]:
    found = [a for a in local_addresses() if not a.is_loopback and not a.is_link_local]
    if not found:
        pytest.skip("this machine has no address but loopback ones")
    return [str(a) for a in sorted(found, key=lambda a: (a.version, a))]


def url_of(address: str, port: int, path: str = "/") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def wait_for_announcement(store: Store, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(server["port"] == port for server in store.servers()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no server announced port {port}")


def nested(url: str, depth: int) -> dict[str, object]:
    """The issue's loop: a POST / that queues itself, retried on 303, `depth` levels deep."""
    request: dict[str, object] = {"url": url, "method": "POST", "data": {"url": "http://x.test/"}}
    for _ in range(depth):
        request = {
            "url": url, "method": "POST", "data": request,
            "retries": 3, "retry_on": [303], "backoff": {"min": 0.05, "max": 0.1},
        }  # fmt: skip
    return request


# -- the guard ---------------------------------------------------------------------------------


def test_every_local_address_is_refused_on_the_redis_and_server_ports() -> None:
    guard = Outbound.of(OutboundConfig(), "redis://127.0.0.1:6391/0", [5999])
    addresses = [*non_loopback(), "127.0.0.1", "127.0.0.9", "::1", "0.0.0.0", "::"]
    for text in addresses:
        address = ipaddress.ip_address(text)
        with pytest.raises(Refused, match="htq's own Redis"):
            guard.check_address(text, address, 6391)
        with pytest.raises(Refused, match="htq's own server"):
            guard.check_address(text, address, 5999)
        guard.check_address(text, address, 8080)  # other ports are the user's
        with pytest.raises(Refused, match="htq's own Redis"):
            guard.check_literal(url_of(text, 6391))


def test_a_remote_redis_is_refused_on_its_own_address_only() -> None:
    guard = Outbound.of(OutboundConfig(), "redis://192.0.2.77:6391/0")
    with pytest.raises(Refused, match="htq's own Redis"):
        guard.check_literal("http://192.0.2.77:6391/")
    guard.check_literal("http://127.0.0.1:6391/")
    guard.check_literal("http://192.0.2.78:6391/")


def test_a_unix_socket_redis_leaves_tcp_ports_alone_but_not_the_server() -> None:
    guard = Outbound.of(OutboundConfig(), "unix:///tmp/htq-redis.sock", [5999])
    guard.check_literal("http://127.0.0.1:6379/")
    with pytest.raises(Refused, match="htq's own server"):
        guard.check_literal("http://localhost:5999/")


def test_servers_announced_in_the_store_are_learnt() -> None:
    guard = Outbound.of(OutboundConfig(), "unix:///tmp/htq-redis.sock")
    guard.check_literal("http://127.0.0.1:7001/")
    here = {"host": __import__("socket").gethostname(), "port": 7001, "addresses": ["127.0.0.1"]}
    there = {"host": "elsewhere", "port": 7002, "addresses": ["192.0.2.9", "127.0.0.1"]}
    guard.learn_servers([here, there])
    for url in ("http://127.0.0.1:7001/", "http://0.0.0.0:7001/", "http://192.0.2.9:7002/"):
        with pytest.raises(Refused, match="htq's own server"):
            guard.check_literal(url)
    guard.check_literal("http://127.0.0.1:7002/")  # another machine's loopback is not ours
    guard.learn_servers([])  # gone: forgotten, kept verdicts too
    guard.check_literal("http://127.0.0.1:7001/")


def test_a_server_is_on_this_machine_by_its_addresses_not_its_name() -> None:
    """Two machines may share a host name (cloned images): a server named as this machine but
    announcing another's address is refused on that address only, and one announcing an
    address of this machine is refused on every local address, whatever its name."""
    guard = Outbound.of(OutboundConfig(), "unix:///tmp/htq-redis.sock")
    me = __import__("socket").gethostname()
    twin = {"host": me, "pid": 1, "port": 7003, "addresses": ["192.0.2.77"]}
    ours = [str(a) for a in local_addresses() if not a.is_loopback]
    here = {"host": "renamed", "pid": 2, "port": 7004, "addresses": ours[:1]}
    guard.learn_servers([twin, here])
    with pytest.raises(Refused, match="htq's own server"):
        guard.check_literal("http://192.0.2.77:7003/")
    guard.check_literal("http://127.0.0.1:7003/")  # this machine's 7003 is not the twin's
    if ours:
        with pytest.raises(Refused, match="htq's own server"):
            guard.check_literal("http://127.0.0.1:7004/")


# -- POST / ------------------------------------------------------------------------------------


def test_post_refuses_the_servers_own_port_on_any_local_address(
    server: ServerThread, api: httpx.Client, store: Store
) -> None:
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    for address in ("127.0.0.1", "localhost", "0.0.0.0", "[::1]", "127。0。0。1", *non_loopback()):
        host = f"[{address}]" if ":" in address and not address.startswith("[") else address
        answer = post(api, nested(f"http://{host}:{port}/", 2))
        assert answer.status_code == 422, (address, answer.text)
        assert answer.json()["field"] == "url"
        assert "htq's own server" in answer.json()["message"]
    assert store.redis.zcard(store.keys.all) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"User-Agent": USER_AGENT},
        {"User-Agent": "htq/0.1"},
        {"User-Agent": "curl/8", "Htq-Request-Id": "x"},
        {"htq-attempt": "2"},
    ],
)
def test_post_refuses_what_an_htq_worker_sent(
    api: httpx.Client, store: Store, headers: dict[str, str]
) -> None:
    answer = post(api, {"url": "http://192.0.2.1/"}, headers=headers)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "loop"
    assert "htq does not queue requests sent by an htq worker" in answer.json()["message"]
    assert store.redis.zcard(store.keys.all) == 0


async def test_the_tuis_client_is_not_taken_for_a_worker(server: ServerThread) -> None:
    api = ApiClient(server.url)
    try:
        uuid = await api.submit({"url": "http://192.0.2.1/"})
        assert (await api.get(uuid))["status"] == "queued"
    finally:
        await api.aclose()


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture
def processes(redis_url: str, store_config: StoreConfig) -> Iterator[list[HtqProcess]]:
    started: list[HtqProcess] = []
    yield started
    for process in started:
        process.stop()


def test_the_issues_loop_makes_one_request_and_ends_refused(
    redis_url: str, store: Store, store_config: StoreConfig, processes: list[HtqProcess]
) -> None:
    """Queued behind the server's back (POST / would refuse it): the worker, a process of its
    own, knows where the server listens from the store and never sends to it."""
    server = start_server(redis_url, store_config.prefix)
    processes.append(server)
    assert server.url is not None
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    wait_for_announcement(store, port)
    processes.append(start_worker(redis_url, store_config.prefix))
    uuid = enqueue(store, **nested(f"http://127.0.0.1:{port}/", 3))
    assert done(store, uuid) is Status.ERROR
    response = store.response(uuid).resource
    assert response is not None and "htq's own server" in response["message"]
    assert store.redis.zcard(store.keys.all) == 1, "nothing but the original was queued"


def test_a_second_htq_refuses_what_a_worker_sends(
    redis_url: str, store: Store, store_config: StoreConfig, processes: list[HtqProcess]
) -> None:
    """Another htq (another namespace, another port): its POST / knows the worker's marker."""
    other_config = replace(store_config, prefix=f"{store_config.prefix}-other")
    other = worker_store(other_config)
    try:
        second = start_server(redis_url, other_config.prefix)
        processes.append(second)
        processes.append(start_worker(redis_url, store_config.prefix))
        retried = enqueue(store, **nested(str(second.url), 2))
        own_agent = enqueue(  # its own User-Agent: the Htq- headers of a retried request tell
            store, **{**nested(str(second.url), 2), "headers": {"User-Agent": "curl/8"}}
        )
        plain = enqueue(store, url=str(second.url), data={"url": "http://192.0.2.1/"})
        for uuid in (retried, own_agent, plain):
            assert done(store, uuid) is Status.SUCCESS
            response = store.response(uuid).resource
            assert response is not None and response["code"] == 403, response
            assert '"loop"' in response["data"]
        assert other.redis.zcard(other.keys.all) == 0, "the second htq queued nothing"
    finally:
        delete_namespace(other)
        other.close()


def test_a_request_to_redis_on_a_non_loopback_address_is_refused(
    store: Store, store_config: StoreConfig, config: WorkerConfig
) -> None:
    port = redis_port(store_config)
    uuids = [
        enqueue(store, url=url_of(address, port, "/x"), data="1") for address in non_loopback()
    ]
    with Worker(config):
        for uuid in uuids:
            assert done(store, uuid) is Status.ERROR
            response = store.response(uuid).resource
            assert response is not None and "htq's own Redis" in response["message"], response


def test_htq_up_never_sends_to_its_own_server(
    store: Store, config: WorkerConfig, target: Target
) -> None:
    """`htq up` gives its worker the server's port at once (no wait for the store)."""
    with Worker(config, server_ports=(target.port,)):
        uuid = enqueue(store, url=f"{target.url}/ip")
        assert done(store, uuid) is Status.ERROR
    assert target.requests == []

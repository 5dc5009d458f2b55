"""Slow-loris: half-sent requests cannot take the server's descriptors or its log; `/healthz`
keeps answering while they are held, and deadlines close them."""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import tornado.httpserver
import tornado.iostream

from tests.support.processes import HtqProcess, htq
from tests.support.redis_server import free_port

#: Half a request head: the blank line that ends it never comes.
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
#: A whole head, and a body that stops short of its Content-Length.
HALF_BODY = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{"
)
FILES = 256  # the server's descriptor limit: its connection cap is 192


def start(redis_url: str, files: int, *extra: str, body_timeout: int = 2) -> HtqProcess:
    port = free_port()
    args = ["server", "--host", "127.0.0.1", "--port", str(port), "--redis", redis_url]
    args += ["--prefix", "slowtest", "--header-timeout", "1"]
    args += ["--body-timeout", str(body_timeout), *extra]
    launcher = ["prlimit", f"--nofile={files}:{files}"]
    return HtqProcess(args, " * Running on", url=f"http://127.0.0.1:{port}/", launcher=launcher)


@contextlib.contextmanager
def held(url: str, count: int, payload: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections that sent `payload` and nothing more, closed on exit."""
    port = httpx.URL(url).port
    assert port is not None
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # the server may have made room already
                sock.sendall(payload)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes `sock` before `deadline` (it sends nothing before closing)."""
    sock.settimeout(max(0.0, deadline - time.monotonic()))
    try:
        return sock.recv(4096) in (b"", b"HTTP/1.1 400 Bad Request\r\n\r\n")
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def healthz_latencies(url: str, probes: int) -> list[float]:
    """Seconds each `/healthz` takes on a new connection, as a load balancer's probe does."""
    latencies = []
    for _ in range(probes):
        began = time.monotonic()
        answer = httpx.get(f"{url}healthz", timeout=5)
        latencies.append(time.monotonic() - began)
        assert answer.status_code == 200, answer.text
    return latencies


def test_half_sent_requests_leave_healthz_answering(redis_url: str) -> None:
    server = start(redis_url, FILES)
    try:
        assert server.url is not None
        with httpx.Client(base_url=server.url) as kept:  # a client connected before
            assert kept.get("/healthz").status_code == 200
            with (
                held(server.url, 2 * FILES, HALF_HEAD) as heads,
                held(server.url, 40, HALF_BODY) as bodies,
            ):
                began = time.monotonic()
                latencies = healthz_latencies(server.url, 20)
                assert kept.get("/healthz").status_code == 200
                posted = httpx.post(server.url, json={"url": "http://127.0.0.1:9/"})
                assert posted.status_code == 303
                # Each deadline closes its connections (those evicted for others, sooner).
                assert all(closed_by_server(sock, began + 1 + 3) for sock in heads)
                assert all(closed_by_server(sock, began + 2 + 3) for sock in bodies)
        print(
            f"healthz under {2 * FILES} half-sent heads and 40 bodies: median "
            f"{1000 * statistics.median(latencies):.1f} ms, max {1000 * max(latencies):.1f} ms"
        )
        assert max(latencies) < 2.0, latencies
    finally:
        assert server.stop() == 0
    output = server.output()
    print(f"log: {len(output)} bytes")
    assert "Traceback" not in output and len(output) < 2000, output[:2000]


def test_a_kept_alive_connection_is_closed_once_idle_past_its_timeout(redis_url: str) -> None:
    server = start(redis_url, FILES, "--idle-timeout", "2")
    try:
        assert server.url is not None
        with held(server.url, 1, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") as (sock,):
            answer = sock.recv(4096)
            served = time.monotonic()
            assert answer.startswith(b"HTTP/1.1 200"), answer
            assert not closed_by_server(sock, served + 1.5)  # not the header deadline (1 s)
            assert closed_by_server(sock, served + 2 + 3)
    finally:
        assert server.stop() == 0


def test_out_of_descriptors_is_one_warning_not_a_flood(redis_url: str) -> None:
    # A cap above what the process may open: accept() meets EMFILE.
    server = start(redis_url, 64, "--max-connections", "1000")
    try:
        assert server.url is not None
        with held(server.url, 150, HALF_HEAD):
            server.wait_for("EMFILE")
            # Answered once the header deadline closed enough of them (within 5 s).
            latencies = healthz_latencies(server.url, 5)
    finally:
        assert server.stop() == 0
    output = server.output()
    print(f"EMFILE: first healthz after {latencies[0]:.2f} s, log {len(output)} bytes")
    assert server.count("cannot accept connections: EMFILE") == 1, output
    assert "Traceback" not in output and len(output) < 2000, output[:2000]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--header-timeout", "0"), ("--body-timeout", "x"), ("--max-connections", "-1")],
)
def test_bad_limits_are_one_clear_line(option: str, value: str) -> None:
    result = htq("server", "--port", str(free_port()), option, value)
    assert result.returncode == 2 and option in result.stderr, result.stderr


def test_slow_bodies_and_unread_responses_give_way_to_new_clients(redis_url: str) -> None:
    """At the cap, a body still coming after the head's deadline, and a response its client
    does not read for as long, give their slot to a new client: neither holds it for the
    body's (or the response's) whole deadline."""
    server = start(redis_url, FILES, "--max-connections", "4", body_timeout=60)
    try:
        assert server.url is not None
        # Four clients that pipeline requests and never read the answers: the server's
        # writes back up once the client's small receive buffer is full.
        port = httpx.URL(server.url).port
        unread = []
        for _ in range(4):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.connect(("127.0.0.1", port or 0))
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.send(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 200)
            unread.append(sock)
        time.sleep(1.0 + 1.0)  # past the head's deadline (1 s), and a sweep
        assert healthz_latencies(server.url, 4)  # each took an unread client's place
        # Four bodies that trickle: the next client takes the place of the oldest.
        with held(server.url, 4, HALF_BODY) as bodies:
            time.sleep(1.0 + 1.0)
            assert healthz_latencies(server.url, 1)
            assert closed_by_server(bodies[0], time.monotonic() + 1)
        for sock in unread:
            sock.close()
    finally:
        assert server.stop() == 0


def test_tornado_still_has_what_the_listener_reaches_into() -> None:
    """htq/server/listener.py uses these private parts of Tornado 6 (pinned below 7)."""
    server = tornado.httpserver.HTTPServer(lambda request: None)
    for name in ("_sockets", "_handlers", "_connections"):
        assert isinstance(getattr(server, name), dict | set), name
    assert callable(server._handle_connection)
    assert callable(tornado.iostream.IOStream.writing)


def test_htq_raises_its_descriptor_limit_to_the_hard_limit() -> None:
    """The soft limit is a default nobody chose; a server or worker takes what it may."""
    code = (
        "import resource; from htq._sockets import raise_descriptor_limit; "
        "raise_descriptor_limit(); print(*resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    done = subprocess.run(
        ["prlimit", "--nofile=256:4096", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["4096", "4096"], done

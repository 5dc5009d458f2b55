"""A callback receiver on loopback, run in a thread, hostile on demand; it records each POST.

    with Receiver() as receiver:        # each Receiver is its own port (on 127.0.0.1 unless told)
        receiver.url                    # "http://127.0.0.1:<port>"
        receiver.wait_for(path, n=1, timeout=5)     # the first n requests to `path`

Endpoints (any method):
    /ok          204 at once
    /slow        nothing until the client goes away (then recorded in `.gone`)
    /hold-first  the first request as /slow, every later one as /ok
    /late        204 after LATE seconds
    /endless     200 and a body that never ends (chunked, 64 KiB at a time; STREAM_LIMIT at most)
    /bomb        200, `Content-Encoding: gzip`: BOMB_BYTES of zeros compressed to a few hundred KiB
    /trickle     a status line, then one byte of a header every 0.2 s, until the client goes
"""

from __future__ import annotations

import select
import threading
import time
import zlib
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

STREAM_LIMIT = 128 * 1024 * 1024  # what /endless sends at most (so a broken client still ends)
BOMB_BYTES = 128 * 1024 * 1024
LATE = 2.5  # seconds /late takes to answer
_CHUNK = bytes(64 * 1024)


@cache
def gzip_bomb() -> bytes:
    """BOMB_BYTES of zeros, gzip-compressed, made without holding them all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(bytes(1024 * 1024)) for _ in range(BOMB_BYTES // (1024 * 1024))]
    return b"".join([*parts, compressor.flush()])


@dataclass(frozen=True)
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float  # time.monotonic() when it was read


class Receiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records every request."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.arrivals: list[Arrival] = []
        self.gone: list[str] = []  # paths of held requests whose client went away
        self.in_flight: dict[str, int] = {}  # requests being answered, by path
        self.most_in_flight: dict[str, int] = {}
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def to(self, path: str) -> list[Arrival]:
        with self._changed:
            return [a for a in self.arrivals if a.path == path]

    def wait_for(self, path: str, n: int = 1, timeout: float = 5.0) -> list[Arrival]:
        """The first `n` requests to `path`, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [a for a in self.arrivals if a.path == path]) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(found)} of {n} requests to {path} came")
                self._changed.wait(remaining)
            return found[:n]

    def _arrived(self, arrival: Arrival) -> int:
        """Record a request; how many came to its path before it."""
        with self._changed:
            before = sum(a.path == arrival.path for a in self.arrivals)
            self.arrivals.append(arrival)
            now = self.in_flight[arrival.path] = self.in_flight.get(arrival.path, 0) + 1
            self.most_in_flight[arrival.path] = max(self.most_in_flight.get(arrival.path, 0), now)
            self._changed.notify_all()
            return before

    def _left(self, path: str, *, gone: bool) -> None:
        with self._changed:
            self.in_flight[path] -= 1
            if gone:
                self.gone.append(path)
            self._changed.notify_all()


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = receiver

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: Receiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        arrival = Arrival(self.command, path, dict(self.headers.items()), body, time.monotonic())
        before = self.owner._arrived(arrival)
        gone = False
        try:
            if path == "/slow" or (path == "/hold-first" and before == 0):
                gone = self._wait_until_gone()
            elif path == "/late":
                time.sleep(LATE)  # the receiver's own pace, not a test waiting
                self._answer(204)
            elif path == "/endless":
                self._endless()
            elif path == "/bomb":
                self._bomb()
            elif path == "/trickle":
                gone = self._trickle()
            else:
                self._answer(204 if path in ("/ok", "/hold-first") else 404)
        except OSError:
            self.close_connection = True
        finally:
            self.owner._left(path, gone=gone)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _answer(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _wait_until_gone(self, limit: float = 120.0) -> bool:
        """Say nothing until the client closes its end (True), or `limit` seconds pass."""
        self.close_connection = True
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable and not self.connection.recv(1024, 0):
                return True
        return False

    def _endless(self) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK)
        for _ in range(STREAM_LIMIT // len(_CHUNK)):
            self.wfile.write(chunk)
        self.wfile.write(b"0\r\n\r\n")

    def _trickle(self, limit: float = 120.0) -> bool:
        """Never finish the headers: a byte every 0.2 s until the client goes (True)."""
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return True
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            if readable and not self.connection.recv(1024, 0):
                return True
        return False

    def _bomb(self) -> None:
        body = gzip_bomb()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

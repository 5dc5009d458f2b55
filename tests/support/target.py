"""A real HTTP/1.1 target on loopback, run in a thread, that records what it receives.

    with Target() as target:            # or Target().start() ... target.stop()
        target.url                      # "http://127.0.0.1:<port>" (https with Target(tls=...))
        target.requests                 # Recorded(method, path, headers, body, time, peer) each
        target.wait_for_request("/delay/30", timeout=5)
        target.wait_for_disconnect(timeout=5)   # monotonic time a client went away, or None
        target.wait_for_delete("/delay/30", timeout=5)
        target.wait_for_spoiled("/hangup", timeout=5)

Endpoints (any method unless said):
    /ip                 JSON {"origin": "<client address>"}
    /status/<code>      that status code, empty body
    /delay/<seconds>    JSON after that long; a client that goes away meanwhile is noticed
                        (within ~50 ms) and recorded in `.disconnects` as (path, monotonic time)
    /bytes/<n>          n random (seeded by n, see `random_bytes`) bytes, application/octet-stream
    /text/<n>           n bytes of ASCII text, text/plain; charset=utf-8
    /zeros/<n>          n NUL bytes, labelled text/plain (text that JSON escapes six-fold)
    /drip/<n>?interval=<s>  n bytes of text, one byte every <s> seconds (default 0.2)
    /gzip               JSON, gzip-compressed (Content-Encoding: gzip)
    /encoded/<codings>/<n>?fill=zeros&label=<c>  n bytes of text (or NULs), encoded with each
                        of the comma-separated codings in turn (gzip, deflate, deflate-raw; any
                        other name: the bytes as they are), and Content-Encoding saying so (or
                        saying <c>): see `encoded`
    /trickle?interval=<s>  a 200's head, one byte every <s> seconds (default 0.5), forever;
                        the client's leaving is recorded in `.disconnects`
    /redirect           302 to /ip
    /headers            repeated and mixed-case headers: X-Dup, Set-Cookie twice; X-MiXeD-Case
    /echo               JSON {"method", "path", "headers", "body"} of the request (body as text)
    /hangup             "ok", then the connection closed (though kept alive by HTTP/1.1's rules);
                        recorded in `.spoiled` once closed
    /trailing           "ok", and 0.1 s later bytes past its Content-Length; recorded in
                        `.spoiled` once sent
    DELETE <anything but /echo>   204, and recorded in `.deletes` too; with ?stall=<seconds>
                        the 204 comes that late; with ?trickle=<s> its head trickles forever
"""

from __future__ import annotations

import functools
import gzip
import json
import random
import select
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

POLL = 0.05
T = TypeVar("T")


def random_bytes(n: int) -> bytes:
    """The body /bytes/<n> sends: the same n bytes every time, so tests can compare."""
    return random.Random(n).randbytes(n)


def text_bytes(n: int) -> bytes:
    """The body /text/<n> sends."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789\n"
    return (alphabet * (n // len(alphabet) + 1))[:n]


@functools.lru_cache(maxsize=16)
def encoded(codings: str, n: int, fill: str = "text") -> bytes:
    """The body /encoded/<codings>/<n> sends: n bytes of text (or of NULs with fill="zeros"),
    encoded with each coding in turn. NULs compress about 1,000 to 1: a bomb."""
    layers = codings.split(",")
    if fill == "zeros" and layers[0] in ("gzip", "deflate"):
        body = _zeros_compressed(n, layers.pop(0))
    else:
        body = bytes(n) if fill == "zeros" else text_bytes(n)
    for coding in layers:
        if coding == "gzip":
            body = gzip.compress(body)
        elif coding == "deflate":
            body = zlib.compress(body)
        elif coding == "deflate-raw":  # deflate without zlib's header, as some servers send it
            raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = raw.compress(body) + raw.flush()
    return body


def _zeros_compressed(n: int, coding: str) -> bytes:
    """n NULs, gzip- or zlib-wrapped, without compressing them all: after a full flush each
    MiB of NULs compresses to the same bytes."""
    mib = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(n, len(mib))
    stream = block * whole + deflate.compress(bytes(rest)) + deflate.flush()
    if coding == "deflate":
        adler = 1
        for _ in range(whole):
            adler = zlib.adler32(mib, adler)
        return b"\x78\xda" + stream + struct.pack(">I", zlib.adler32(bytes(rest), adler))
    crc = 0
    for _ in range(whole):
        crc = zlib.crc32(mib, crc)
    trailer = struct.pack("<II", zlib.crc32(bytes(rest), crc), n & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + trailer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float  # time.monotonic() when the request was read
    peer: tuple[str, int] = ("", 0)  # client address and port: the same on a reused connection


class Target:
    """A threaded HTTP/1.1 server on 127.0.0.1 (keep-alive) that records every request."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls  # a server context: HTTPS (the handshake happens on the first read)
        self.requests: list[Recorded] = []
        self.deletes: list[Recorded] = []
        self.disconnects: list[tuple[str, float]] = []
        self.spoiled: list[str] = []  # paths whose connection /hangup or /trailing spoiled
        self.answered: list[str] = []  # paths whose whole answer was written to the client
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the target is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Target:
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Target:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- waiting for what clients did --------------------------------------------------------

    def wait_for_request(self, path: str, timeout: float) -> Recorded | None:
        """The first request recorded for `path`, waiting up to `timeout` seconds for one."""
        return self._wait(lambda: next((r for r in self.requests if r.path == path), None), timeout)

    def wait_for_delete(self, path: str, timeout: float) -> Recorded | None:
        """The first DELETE recorded for `path`, waiting up to `timeout` seconds for one."""
        return self._wait(lambda: next((r for r in self.deletes if r.path == path), None), timeout)

    def wait_for_spoiled(self, path: str, timeout: float) -> str | None:
        """`path` once /hangup closed its connection or /trailing sent its extra bytes."""
        return self._wait(lambda: next((p for p in self.spoiled if p == path), None), timeout)

    def wait_for_answer(self, path: str, timeout: float) -> str | None:
        """`path` once an answer to it (status, headers and body) has been written."""
        return self._wait(lambda: next((p for p in self.answered if p == path), None), timeout)

    def wait_for_disconnect(self, timeout: float, path: str | None = None) -> float | None:
        """Monotonic time the first client (for `path`, if given) went away mid-request."""

        def find() -> float | None:
            return next((t for p, t in self.disconnects if path is None or p == path), None)

        return self._wait(find, timeout)

    def _wait(self, find: Callable[[], T | None], timeout: float) -> T | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := find()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
            return found

    def _record(self, entry: Recorded | tuple[str, float] | str, *lists: list[Any]) -> None:
        with self._changed:
            for target in lists:
                target.append(entry)
            self._changed.notify_all()


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of new connections (a cancel storm's
    # DELETEs) would be dropped and retried by TCP a second later, as no real server does.
    request_queue_size = 128


def _handler_for(target: Target) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = target

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: Target
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what they need from `.requests`."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = dict(self.headers.items())
        peer = (str(self.client_address[0]), int(self.client_address[1]))
        recorded = Recorded(self.command, parts.path, headers, body, time.monotonic(), peer)
        if self.command == "DELETE" and parts.path != "/echo":
            self.owner._record(recorded, self.owner.requests, self.owner.deletes)
            query = parse_qs(parts.query)
            if stall := query.get("stall"):
                self._client_left_within(float(stall[0]))
            if trickle := query.get("trickle"):
                self._trickle(float(trickle[0]), recorded)
                return
            self._send(204, b"")
            return
        self.owner._record(recorded, self.owner.requests)
        segments = parts.path.strip("/").split("/")
        route = getattr(self, f"_route_{segments[0]}", None)
        if route is None:
            self._send(404, b"not found", "text/plain")
            return
        route(segments[1:], parse_qs(parts.query), recorded)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    # -- the endpoints -----------------------------------------------------------------------

    def _route_ip(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._json({"origin": self.client_address[0]})

    def _route_status(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._send(int(args[0]), b"")

    def _route_delay(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        if self._client_left_within(float(args[0])):
            self.owner._record((req.path, time.monotonic()), self.owner.disconnects)
            self.close_connection = True
            return
        self._json({"delayed": float(args[0])})

    def _route_bytes(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._send(200, random_bytes(int(args[0])), "application/octet-stream")

    def _route_text(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._send(200, text_bytes(int(args[0])), "text/plain; charset=utf-8")

    def _route_zeros(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._send(200, bytes(int(args[0])), "text/plain")

    def _route_drip(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        n, interval = int(args[0]), float(query.get("interval", ["0.2"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        try:
            for byte in text_bytes(n):
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self._client_left_within(interval):
                    self.owner._record((req.path, time.monotonic()), self.owner.disconnects)
                    break
        except OSError:
            pass
        self.close_connection = True

    def _route_gzip(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        body = gzip.compress(b'{"compressed": true}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route_encoded(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        body = encoded(args[0], int(args[1]), query.get("fill", ["text"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        label = query.get("label", [", ".join(args[0].split(","))])[0]
        self.send_header("Content-Encoding", label)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client had enough
            self.close_connection = True

    def _route_trickle(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._trickle(float(query.get("interval", ["0.5"])[0]), req)

    def _route_redirect(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self.send_response(302)
        self.send_header("Location", "/ip")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _route_headers(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Dup", "one")
        self.send_header("X-Dup", "two")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("X-MiXeD-Case", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route_echo(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._json(
            {
                "method": req.method,
                "path": self.path,
                "headers": req.headers,
                "body": req.body.decode("utf-8", errors="replace"),
            }
        )

    def _route_flaky(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        """`/flaky/<name>/<n>`: 503 for the first n requests to this path, then 200."""
        seen = sum(1 for r in self.owner.requests if r.path == req.path and r.method == req.method)
        if seen <= int(args[1]):
            self._send(503, b"not yet", "text/plain")
        else:
            self._json({"attempt": seen})

    def _route_busy(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        """`/busy/<name>/<seconds>`: the first request gets 429 with Retry-After, then 200."""
        seen = sum(1 for r in self.owner.requests if r.path == req.path)
        if seen == 1:
            self.send_response(429)
            self.send_header("Retry-After", args[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json({"attempt": seen})

    def _route_hangup(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._send(200, b"ok", "text/plain")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True
        self.owner._record(req.path, self.owner.spoiled)

    def _route_trailing(self, args: list[str], query: dict[str, list[str]], req: Recorded) -> None:
        self._send(200, b"ok", "text/plain")
        self.wfile.flush()
        time.sleep(0.1)  # after the client has read the answer: left waiting in its socket
        self.wfile.write(b"HTTP/1.1 200 OK\r\n\r\n")  # what a broken proxy might leave behind
        self.wfile.flush()
        self.owner._record(req.path, self.owner.spoiled)

    # -- helpers -----------------------------------------------------------------------------

    def _trickle(self, interval: float, req: Recorded) -> None:
        """A 200's head, one byte every `interval` seconds, until the client leaves (recorded
        in `.disconnects`)."""
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Trickle: a\r\n" * 100_000
        self.close_connection = True
        try:
            for byte in head:
                if self.owner._stopping.is_set():
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self._client_left_within(interval):
                    break
        except OSError:
            pass
        self.owner._record((req.path, time.monotonic()), self.owner.disconnects)

    def _client_left_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True as soon as the client closes or shuts down its socket."""
        deadline = time.monotonic() + seconds
        sock: socket.socket = self.connection
        while (remaining := deadline - time.monotonic()) > 0 and not self.owner._stopping.is_set():
            readable, _, _ = select.select([sock], [], [], min(POLL, remaining))
            if readable:
                try:  # the TCP stream itself, under any TLS: b"" once the client is gone
                    if socket.socket.recv(sock, 1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
                time.sleep(POLL)  # data from the client (pipelining); keep waiting
        return False

    def _json(self, payload: Any) -> None:
        self._send(200, json.dumps(payload).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str | None = None) -> None:
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        if code not in (204, 304) and not 100 <= code < 200:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and code not in (204, 304):
            self.wfile.write(body)
        self.owner._record(urlsplit(self.path).path, self.owner.answered)

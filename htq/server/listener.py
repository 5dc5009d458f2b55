"""The HTTP listener: deadlines for a request's head and body, an idle timeout, a deadline for
the client to read its response, a cap on open connections below the descriptor limit, and
accepting that survives running out of descriptors.

The deadlines are kept by one sweep every SWEEP seconds, not by Tornado's `header_timeout` and
`body_timeout`: those wrap every request's reads in a timer and a future of their own, about a
tenth of a POST's CPU time. A connection waiting for its first request head has
`header_timeout`, a kept-alive one `idle_timeout` for its next head, a request body
`body_timeout` in all, and a response written but not read by the client `idle_timeout`.
At the cap, a new connection takes the place of one that is waiting for a request head (one
that never sent a request first), else of a body or a response that has taken longer than
`header_timeout`: a slow-loris holds slots only until someone else needs them. A request being
served (a long `GET /<uuid>/response/` too) is never closed for another.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import logging
import resource
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.ioloop
from tornado.http1connection import HTTP1ServerConnection
from tornado.ioloop import IOLoop

log = logging.getLogger("htq.server")

#: Descriptors kept for Redis connections, the listening sockets, logs and files.
MIN_RESERVE = 64
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_ACCEPTS_PER_CALL = 128  # as Tornado's own loop: other callbacks run between batches
_PAUSE_FIRST, _PAUSE_MOST = 0.05, 1.0  # seconds accepting pauses when out of descriptors
_LOG_EVERY = 60.0  # seconds between two warnings about running out of descriptors
SWEEP = 0.5  # seconds between two looks for connections past their deadline


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float  # seconds for a connection's first request head, whole
    body_timeout: float  # seconds for a request body, whole
    idle_timeout: float  # seconds a kept-alive connection waits for its next request head
    max_connections: int  # open connections at most; 0: from the descriptor limit


def default_max_connections() -> int:
    """The descriptor limit less a reserve, so that accept() never meets EMFILE."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft > 1 << 20:
        soft = 1 << 20
    return max(1, soft - max(MIN_RESERVE, soft // 8))


class Listener(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server with the limits above (see the module's docstring).

    It reaches into TCPServer's `_sockets`, `_handlers`, `_handle_connection` (its own accept
    loop) and HTTPServer's `_connections` (its sweep): Tornado is pinned below 7, and
    tests/test_slow_clients.py checks that they are still there.
    """

    def initialize(  # type: ignore[override]
        self, request_callback: Any, *, limits: Limits, **kwargs: Any
    ) -> None:
        super().initialize(request_callback, **kwargs)
        self.limits = limits
        self.max_connections = limits.max_connections or default_max_connections()
        # Each connection by what it waits for, the longest waiting first -> its deadline.
        self._new: _Deadlines = collections.OrderedDict()  # its first request head
        self._idle: _Deadlines = collections.OrderedDict()  # kept alive: its next request head
        self._body: _Deadlines = collections.OrderedDict()  # the rest of its request's body
        self._served: set[HTTP1ServerConnection] = set()
        self._writing: dict[HTTP1ServerConnection, float] = {}  # response unread since
        self._sweeping = tornado.ioloop.PeriodicCallback(self._sweep, SWEEP * 1000)
        self._pause = _PAUSE_FIRST
        self._refused = 0  # accepts that met EMFILE since the last warning
        self._warned = -_LOG_EVERY

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)
        if not self._sweeping.is_running():
            self._sweeping.start()

    def stop(self) -> None:
        self._sweeping.stop()
        super().stop()

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        assert isinstance(server_conn, HTTP1ServerConnection)
        now = time.monotonic()
        if server_conn in self._served:  # kept alive: its next request may idle first
            self._idle[server_conn] = now + self.limits.idle_timeout
        else:
            self._new[server_conn] = now + self.limits.header_timeout
        return _Watched(super().start_request(server_conn, request_conn), self, server_conn)

    def head_came(self, server_conn: HTTP1ServerConnection) -> None:
        """Its request head came: its body (if any) is on the clock now."""
        self._new.pop(server_conn, None)
        self._idle.pop(server_conn, None)
        self._served.add(server_conn)
        self._body[server_conn] = time.monotonic() + self.limits.body_timeout

    def body_came(self, server_conn: HTTP1ServerConnection) -> None:
        """The whole request came: it is being served, not to be closed for another."""
        self._body.pop(server_conn, None)

    def on_close(self, server_conn: object) -> None:
        assert isinstance(server_conn, HTTP1ServerConnection)
        for waiting in (self._new, self._idle, self._body, self._writing):
            waiting.pop(server_conn, None)
        self._served.discard(server_conn)
        super().on_close(server_conn)

    def _sweep(self) -> None:
        """Close the connections past a deadline; note the responses their clients don't read."""
        now = time.monotonic()
        for waiting in (self._new, self._idle, self._body):
            while waiting:
                server_conn, deadline = next(iter(waiting.items()))
                if deadline > now:
                    break  # one timeout a dict: the rest are later
                waiting.pop(server_conn)
                server_conn.stream.close()
        for server_conn in list(self._connections):  # closing one may change the set
            if not isinstance(server_conn, HTTP1ServerConnection):
                continue
            if not server_conn.stream.writing():
                self._writing.pop(server_conn, None)
            elif now - self._writing.setdefault(server_conn, now) > self.limits.idle_timeout:
                server_conn.stream.close()

    def _make_room(self) -> bool:
        """Close a connection waiting for a request head, the one waiting longest; else a body
        or an unread response that has taken longer than a head may."""
        for waiting in (self._new, self._idle):
            if waiting:
                server_conn, _ = waiting.popitem(last=False)
                server_conn.stream.close()
                return True
        late = time.monotonic() - self.limits.header_timeout
        if self._body:
            server_conn, deadline = next(iter(self._body.items()))
            if deadline - self.limits.body_timeout < late:
                self._body.pop(server_conn)
                server_conn.stream.close()
                return True
        for server_conn, since in self._writing.items():
            if since < late:
                server_conn.stream.close()
                return True
        return False

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """Tornado's accept loop logs a traceback for every failed accept(): out of descriptors,
        the socket stays readable and that is a flood. This one pauses and warns once."""
        loop = IOLoop.current()
        removed = False

        def accept(fd: Any, events: int) -> None:
            for _ in range(_ACCEPTS_PER_CALL):
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in _OUT_OF_DESCRIPTORS:
                        raise
                    self._out_of_descriptors(exc, pause)
                    return
                self._pause = _PAUSE_FIRST
                if len(self._connections) >= self.max_connections and not self._make_room():
                    connection.close()  # every slot is serving a request: the client retries
                    continue
                self._handle_connection(connection, address)

        def pause() -> None:
            loop.remove_handler(sock)
            loop.call_later(self._pause, resume)
            self._pause = min(2 * self._pause, _PAUSE_MOST)

        def resume() -> None:
            if not removed:
                loop.add_handler(sock, accept, IOLoop.READ)

        def remove() -> None:
            nonlocal removed
            removed = True
            loop.remove_handler(sock)

        loop.add_handler(sock, accept, IOLoop.READ)
        return remove

    def _out_of_descriptors(self, exc: OSError, pause: Callable[[], None]) -> None:
        self._make_room()
        pause()
        self._refused += 1
        now = time.monotonic()
        if now - self._warned < _LOG_EVERY:
            return
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        log.warning(
            "htq server: cannot accept connections: %s (%d open, descriptor limit %d, "
            "--max-connections %d); %d refused since the last warning",
            errno.errorcode.get(exc.errno or 0, exc.strerror),
            len(self._connections),
            soft,
            self.max_connections,
            self._refused,
        )
        self._warned, self._refused = now, 0


_Deadlines = collections.OrderedDict[HTTP1ServerConnection, float]


class _Watched(tornado.httputil.HTTPMessageDelegate):
    """Passes everything on; tells the listener when a request's head and body have come."""

    def __init__(
        self,
        delegate: tornado.httputil.HTTPMessageDelegate,
        listener: Listener,
        server_conn: HTTP1ServerConnection,
    ) -> None:
        self._delegate = delegate
        self._listener = listener
        self._server_conn = server_conn

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self._listener.head_came(self._server_conn)
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        self._listener.body_came(self._server_conn)
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._listener.body_came(self._server_conn)
        self._delegate.on_connection_close()

"""The HTTP listener: deadlines for a request's head and body, an idle timeout, a cap on open
connections below the descriptor limit, and accepting that survives running out of descriptors.

Tornado (6.x) bounds the whole head with one timer that also serves as the keep-alive idle
timeout, and the whole body with another; the first request of a connection gets
`header_timeout`, a kept-alive connection's next request `idle_timeout`. At the cap, a new
connection takes the place of the one that has waited longest for a request head (one that
never sent a request first): a slow-loris holds slots only until someone else needs them.
"""

from __future__ import annotations

import collections
import copy
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
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.ioloop import IOLoop

log = logging.getLogger("htq.server")

#: Descriptors kept for Redis connections, the listening sockets, logs and files.
MIN_RESERVE = 64
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_ACCEPTS_PER_CALL = 128  # as Tornado's own loop: other callbacks run between batches
_PAUSE_FIRST, _PAUSE_MOST = 0.05, 1.0  # seconds accepting pauses when out of descriptors
_LOG_EVERY = 60.0  # seconds between two warnings about running out of descriptors


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
    """Tornado's HTTP server with the limits above (see the module's docstring)."""

    def initialize(  # type: ignore[override]
        self, request_callback: Any, *, limits: Limits, **kwargs: Any
    ) -> None:
        super().initialize(request_callback, body_timeout=limits.body_timeout, **kwargs)
        self.conn_params.header_timeout = limits.header_timeout
        self._idle_params = copy.copy(self.conn_params)
        self._idle_params.header_timeout = limits.idle_timeout
        self.max_connections = limits.max_connections or default_max_connections()
        # Connections waiting for a request head, longest first: never served, then kept alive.
        self._new: collections.OrderedDict[HTTP1ServerConnection, None] = collections.OrderedDict()
        self._idle: collections.OrderedDict[HTTP1ServerConnection, None] = collections.OrderedDict()
        self._served: set[HTTP1ServerConnection] = set()
        self._pause = _PAUSE_FIRST
        self._refused = 0  # accepts that met EMFILE since the last warning
        self._warned = -_LOG_EVERY

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        assert isinstance(server_conn, HTTP1ServerConnection)
        assert isinstance(request_conn, HTTP1Connection)
        if server_conn in self._served:  # kept alive: its next request may idle first
            self._idle[server_conn] = None
            request_conn.params = self._idle_params
        else:
            self._new[server_conn] = None
        delegate = super().start_request(server_conn, request_conn)
        return _HeadSeen(delegate, lambda: self._busy(server_conn))

    def _busy(self, server_conn: HTTP1ServerConnection) -> None:
        """Its request head came: not to be closed for another, and its next one may idle."""
        self._new.pop(server_conn, None)
        self._idle.pop(server_conn, None)
        self._served.add(server_conn)

    def on_close(self, server_conn: object) -> None:
        assert isinstance(server_conn, HTTP1ServerConnection)
        self._new.pop(server_conn, None)
        self._idle.pop(server_conn, None)
        self._served.discard(server_conn)
        super().on_close(server_conn)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request head, if any."""
        for waiting in (self._new, self._idle):
            if waiting:
                server_conn, _ = waiting.popitem(last=False)
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


class _HeadSeen(tornado.httputil.HTTPMessageDelegate):
    """Passes everything on; says when a request's head has come."""

    def __init__(
        self, delegate: tornado.httputil.HTTPMessageDelegate, seen: Callable[[], None]
    ) -> None:
        self._delegate = delegate
        self._seen = seen

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self._seen()
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._delegate.on_connection_close()

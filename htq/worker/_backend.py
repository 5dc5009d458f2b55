"""An httpcore network backend whose sockets an InFlight can interrupt and hold to a deadline.

httpcore's SyncBackend creates the socket inside `socket.create_connection`, out of reach
until it is connected; this one creates it first, so even a connect can be interrupted.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import ssl
import struct
import sys
import time
from collections.abc import Iterable
from typing import Any, TypeVar

import httpcore

from htq._sockets import bound
from htq.outbound import Outbound, Refused
from htq.worker._in_flight import InFlight
from htq.worker._resolver import Resolver, shared

_Info = TypeVar("_Info", bound=tuple[Any, ...])  # one of getaddrinfo's answers
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class OutboundRefused(httpcore.ConnectError):
    """Every address the host resolved to is refused by the outbound guard."""


class InterruptibleStream(httpcore.NetworkStream):
    """A socket stream (like httpcore's SyncStream) that reports each operation to its InFlight."""

    def __init__(self, sock: socket.socket, in_flight: InFlight) -> None:
        self._sock = sock
        self._in_flight = in_flight
        # Plain TCP: a blocking socket, each operation held to its timeout by the kernel (see
        # htq._sockets). TLS cannot: a blocking SSLSocket retries a read the kernel timed out.
        self._kernel_timeouts = not isinstance(sock, ssl.SSLSocket)
        if self._kernel_timeouts:
            sock.settimeout(None)
        self._received = 0  # bytes read from the socket so far

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout = self._in_flight.enter(self._sock, timeout, httpcore.ReadTimeout)
        try:
            self._limit(socket.SO_RCVTIMEO, timeout)
            data = self._sock.recv(max_bytes)
            self._received += len(data)
            return data
        except (BlockingIOError, TimeoutError) as exc:
            raise httpcore.ReadTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ReadError(exc) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        while buffer:
            limit = self._in_flight.enter(self._sock, timeout, httpcore.WriteTimeout)
            try:
                self._limit(socket.SO_SNDTIMEO, limit)
                buffer = buffer[self._sock.send(buffer) :]
            except (BlockingIOError, TimeoutError) as exc:
                raise httpcore.WriteTimeout(exc) from exc
            except OSError as exc:
                raise httpcore.WriteError(exc) from exc

    def _limit(self, option: int, timeout: float | None) -> None:
        """Bound the next receive (or send) by `timeout` seconds; None: no bound."""
        if self._kernel_timeouts:
            bound(self._sock, option, timeout)
        else:
            self._sock.settimeout(timeout)

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        if isinstance(self._sock, ssl.SSLSocket):
            raise httpcore.ConnectError("TLS through a TLS (https://) proxy is not supported")
        timeout = self._in_flight.enter(self._sock, timeout, httpcore.ConnectTimeout)
        try:
            self._sock.settimeout(timeout)
            sock = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except TimeoutError as exc:
            self.close()
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:
            self.close()
            raise httpcore.ConnectError(exc) from exc
        return InterruptibleStream(sock, self._in_flight)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock._sslobj  # type: ignore[attr-defined]  # as httpcore does
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return self._is_readable()
        return None

    def _is_readable(self) -> bool:
        """True if data or an end of stream waits: a keep-alive connection gone stale.

        httpcore asks before each reuse of a connection. On plain TCP (Linux) the kernel's
        TCP_INFO answers without letting go of the GIL, as `select` does: the connection is
        no longer established, or the kernel received more bytes than were read.
        """
        if self._kernel_timeouts and self._sock.fileno() >= 0:
            state_and_received = _tcp_state_and_received(self._sock)
            if state_and_received is not None:
                state, received = state_and_received
                return state != _TCP_ESTABLISHED or received != self._received
        return _select_readable(self._sock)


class InterruptibleBackend(httpcore.NetworkBackend):
    """Opens TCP connections whose sockets belong to `in_flight` from before they connect,
    only to addresses `outbound` permits (the address checked is the address connected to:
    no second lookup that a rebinding DNS could answer otherwise).

    A name is looked up by `resolver` (the process's shared one by default) while the thread
    waits as for a socket: to the deadline, and no longer once interrupted.
    """

    def __init__(
        self, in_flight: InFlight, outbound: Outbound | None, resolver: Resolver | None = None
    ) -> None:
        self._in_flight = in_flight
        self._outbound = outbound
        self._resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._resolve(host, port, timeout)
        except OSError as exc:
            raise httpcore.ConnectError(exc) from exc
        if self._outbound is not None:
            addresses = self._permitted(host, port, addresses)
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if local_address is not None:
                    sock.bind((local_address, 0))
                sock.settimeout(self._in_flight.enter(sock, timeout, httpcore.ConnectTimeout))
                sock.connect(address)
                return InterruptibleStream(sock, self._in_flight)
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        if isinstance(error, TimeoutError):
            raise httpcore.ConnectTimeout(error) from error
        raise httpcore.ConnectError(error) from error

    def _resolve(self, host: str, port: int, timeout: float | None) -> list[Any]:
        try:  # an address (no lookup: at once, as before, and no thread to hand it to)
            return socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            pass
        resolver = self._resolver or shared()
        return self._in_flight.wait(resolver.lookup(host, port), timeout)

    def _permitted(self, host: str, port: int, addresses: list[_Info]) -> list[_Info]:
        assert self._outbound is not None
        permitted, refusal = [], None
        for info in addresses:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            try:
                self._outbound.check_address(host, address, port)
            except Refused as exc:
                refusal = refusal or exc
            else:
                permitted.append(info)
        if not permitted and refusal is not None:
            raise OutboundRefused(str(refusal)) from refusal
        return permitted

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("htq sends requests over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# Linux's struct tcp_info: tcpi_state is its first byte, tcpi_bytes_received (since Linux
# 4.1) a u64 at offset 128. Elsewhere TCP_INFO is missing or shorter: `select` it is.
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_TCP_INFO_SIZE = 136
_TCP_ESTABLISHED = 1
_BYTES_RECEIVED = struct.Struct("=Q")


def _tcp_state_and_received(sock: socket.socket) -> tuple[int, int] | None:
    """The TCP state of `sock` and the bytes its kernel received; None where unknown."""
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None
    if len(info) < _TCP_INFO_SIZE:
        return None
    return info[0], _BYTES_RECEIVED.unpack_from(info, 128)[0]


def _select_readable(sock: socket.socket) -> bool:
    """True if the socket has data or EOF waiting (an idle keep-alive connection gone stale)."""
    if sock.fileno() < 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)

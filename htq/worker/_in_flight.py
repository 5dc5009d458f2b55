"""A request in flight on a sender thread: its claim, its deadline, and how other threads
stop it."""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
import time
from collections.abc import Iterator

import httpcore

from htq.store import Claim


class Interrupt(enum.IntEnum):
    """Why a request was stopped before it finished; the strongest reason wins."""

    SHUTDOWN = 1  # the worker is stopping (hand it back to the queue)
    TAKEN_BACK = 2  # the claim was taken back (drop it: another worker has it)
    CANCELED = 3  # a DELETE canceled it (drop it, then DELETE the target)


class InFlight:
    """The request one sender thread holds, and its sending, interruptible from other threads.

    While sending, the thread's network streams call `enter(sock, timeout)` before every
    blocking socket operation: that records the socket in use, clamps the timeout to the
    request's overall deadline (httpx's timeouts apply per phase), and refuses to block once
    interrupted. `interrupt` shuts the recorded socket down, which wakes a blocked connect or
    recv at once (closing it from another thread would not).

    The claim stays held after sending, until the result is stored, so heartbeats keep
    renewing it while Redis is away.

    `within(seconds)` holds every socket operation of the thread in its block to one deadline
    for the whole block, sending or not (a cancel's DELETE, a callback): a target that trickles
    a byte at a time holds the thread no longer than that.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claim: Claim | None = None
        self._sending = False
        self._deadline = 0.0
        self._reason: Interrupt | None = None
        self._socket: socket.socket | None = None
        self._within: float | None = None  # the deadline of `within`'s block, if in one

    @property
    def claim(self) -> Claim | None:
        return self._claim

    def begin(self, claim: Claim, timeout: float) -> None:
        """Hold `claim` and start sending it, with `timeout` seconds for the whole exchange."""
        with self._lock:
            self._claim = claim
            self._sending = True
            self._deadline = time.monotonic() + timeout
            self._reason = None
            self._socket = None

    def sent(self) -> Interrupt | None:
        """Sending is over (the claim is still held); returns why it was interrupted, if it was."""
        with self._lock:
            self._sending = False
            self._socket = None
            return self._reason

    def release(self) -> None:
        """The claim is settled: stored, dropped or handed back."""
        with self._lock:
            self._claim = None
            self._sending = False
            self._reason = None
            self._socket = None

    def interrupt(
        self, reason: Interrupt, uuid: str | None = None, token: str | None = None
    ) -> bool:
        """Stop the current request (only if it is `uuid`/`token`, when given); False if idle."""
        with self._lock:
            claim = self._claim
            if claim is None or uuid not in (None, claim.uuid) or token not in (None, claim.token):
                return False
            if self._reason is None or reason > self._reason:
                self._reason = reason
            sock = self._socket
        if sock is not None:
            shutdown(sock)
        return True

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Hold the socket operations in the block to `seconds` from now, in all (and to the
        request's deadline too, while sending)."""
        with self._lock:
            outer = self._within
            deadline = time.monotonic() + seconds
            self._within = deadline if outer is None else min(outer, deadline)
        try:
            yield
        finally:
            with self._lock:
                self._within = outer

    def enter(
        self,
        sock: socket.socket,
        timeout: float | None,
        expired: type[httpcore.TimeoutException] = httpcore.ReadTimeout,
    ) -> float | None:
        """Called before a blocking operation on `sock`; returns the timeout to use for it."""
        with self._lock:
            deadline = self._within
            # Not sending (the DELETE after a cancel): `within`'s deadline only, no interrupt.
            if self._sending:
                if self._reason is not None:
                    shutdown(sock)
                    raise httpcore.ReadError(f"interrupted ({self._reason.name.lower()})")
                self._socket = sock
                deadline = self._deadline if deadline is None else min(deadline, self._deadline)
        if deadline is None:
            return timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise expired("the deadline of the whole exchange has passed")
        return remaining if timeout is None else min(timeout, remaining)


def shutdown(sock: socket.socket) -> None:
    """Shut a socket down for both directions; wakes any thread blocked on it."""
    # socket.socket.shutdown, not SSLSocket.shutdown: that one would also unwrap the TLS
    # object under the feet of the thread reading it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)

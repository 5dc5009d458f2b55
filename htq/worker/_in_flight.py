"""A request in flight on a sender thread: its claim, its deadline, and how other threads
stop it."""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
import time

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
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claim: Claim | None = None
        self._sending = False
        self._deadline = 0.0
        self._reason: Interrupt | None = None
        self._socket: socket.socket | None = None

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

    def enter(
        self,
        sock: socket.socket,
        timeout: float | None,
        expired: type[httpcore.TimeoutException] = httpcore.ReadTimeout,
    ) -> float | None:
        """Called before a blocking operation on `sock`; returns the timeout to use for it."""
        with self._lock:
            if not self._sending:  # e.g. the DELETE after a cancel: no deadline, no interrupt
                return timeout
            if self._reason is not None:
                shutdown(sock)
                raise httpcore.ReadError(f"interrupted ({self._reason.name.lower()})")
            self._socket = sock
            remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise expired("the request's timeout has passed")
        return remaining if timeout is None else min(timeout, remaining)


def shutdown(sock: socket.socket) -> None:
    """Shut a socket down for both directions; wakes any thread blocked on it."""
    # socket.socket.shutdown, not SSLSocket.shutdown: that one would also unwrap the TLS
    # object under the feet of the thread reading it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)

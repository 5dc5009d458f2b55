"""A request in flight on a sender thread: its claim, its deadline, and how other threads
stop it."""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TypeVar

import httpcore

from htq.store import Claim

_T = TypeVar("_T")


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

    `wait(future, timeout)` holds work done in another thread (a name's lookup) the same way:
    to the deadline, and ended at once by an interrupt.

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
        self._woken: threading.Event | None = None  # set by `interrupt`, while in `wait`
        self._within: float | None = None  # the deadline of `within`'s block, if in one

    @property
    def claim(self) -> Claim | None:
        return self._claim

    @property
    def sending(self) -> bool:
        """True between `begin` and `sent`: the whole exchange is held to its deadline."""
        return self._sending

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
            sock, woken = self._socket, self._woken
        if sock is not None:
            shutdown(sock)
        if woken is not None:
            woken.set()
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
            deadline = self._current_deadline(sock)
            if self._sending:
                self._socket = sock
        if deadline is None:
            return timeout
        return _clamped(timeout, deadline, expired)

    def wait(
        self,
        future: Future[_T],
        timeout: float | None,
        expired: type[httpcore.TimeoutException] = httpcore.ConnectTimeout,
    ) -> _T:
        """The result of `future`, work of another thread, awaited at most `timeout` seconds
        and as long as the deadline allows, and no longer once interrupted (it is canceled)."""
        woken = threading.Event()
        future.add_done_callback(lambda _: woken.set())
        try:
            with self._lock:
                deadline = self._current_deadline()
                self._woken = woken if self._sending else None
            woken.wait(timeout if deadline is None else _clamped(timeout, deadline, expired))
            with self._lock:
                self._woken = None
                self._current_deadline()  # raises if interrupted meanwhile
            if not future.done():
                raise expired("the deadline of the whole exchange has passed")
        except BaseException:
            with self._lock:
                self._woken = None
            future.cancel()  # not yet started: it never will be
            raise
        return future.result()

    def _current_deadline(self, sock: socket.socket | None = None) -> float | None:
        """The deadline that holds now (the lock held); once sending is interrupted, shuts
        `sock` down and raises."""
        deadline = self._within
        # Not sending (the DELETE after a cancel): `within`'s deadline only, no interrupt.
        if self._sending:
            if self._reason is not None:
                if sock is not None:
                    shutdown(sock)
                raise httpcore.ReadError(f"interrupted ({self._reason.name.lower()})")
            deadline = self._deadline if deadline is None else min(deadline, self._deadline)
        return deadline


def _clamped(
    timeout: float | None, deadline: float, expired: type[httpcore.TimeoutException]
) -> float:
    """`timeout`, no later than `deadline`; raises `expired` if that has passed."""
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

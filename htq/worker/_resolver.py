"""Name lookups in threads of their own, shared by a worker process, so a sender waits for one no
longer than its request's deadline (getaddrinfo itself cannot be interrupted)."""

from __future__ import annotations

import collections
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

Addresses = list[tuple[Any, ...]]  # getaddrinfo's answers
Resolve = Callable[[str, int], Addresses]
_Lookup = tuple[Future[Addresses], str, int]

THREADS = 64  # lookups at once, at most; more wait their turn (to their own deadline)


def getaddrinfo(host: str, port: int) -> Addresses:
    """The TCP addresses of `host` (what the OS resolver answers, however long it takes)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


class Resolver:
    """Runs each lookup in a daemon thread of its own, up to `threads` at once; the lookups
    beyond wait for the first thread to finish.

    A thread per lookup (lookups happen only for new connections to a name, and starting a
    thread costs what handing a lookup to a pool does), so that a name server that never
    answers holds the lookups of its own names, not those of every other name. Daemon threads,
    not a ThreadPoolExecutor: that one's threads are joined at exit, so a lookup a hostile name
    server never answers would hold up the worker's exit.
    """

    def __init__(self, resolve: Resolve = getaddrinfo, threads: int = THREADS) -> None:
        self._resolve = resolve
        self._most = threads
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: collections.deque[_Lookup] = collections.deque()

    def lookup(self, host: str, port: int) -> Future[Addresses]:
        """The addresses of `host`, in time (a lookup canceled before it starts never runs)."""
        job: _Lookup = (Future(), host, port)
        with self._lock:
            if self._running >= self._most:
                self._waiting.append(job)
                return job[0]
            self._running += 1
        threading.Thread(target=self._run, args=(job,), name="htq-resolver", daemon=True).start()
        return job[0]

    def _run(self, job: _Lookup | None) -> None:
        while job is not None:
            future, host, port = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(self._resolve(host, port))
                except BaseException as exc:  # the sender re-raises it
                    future.set_exception(exc)
            with self._lock:
                job = self._waiting.popleft() if self._waiting else None
                if job is None:
                    self._running -= 1


_shared: Resolver | None = None
_shared_lock = threading.Lock()


def shared() -> Resolver:
    """The process's resolver (of the OS), created at the first lookup."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Resolver()
        return _shared

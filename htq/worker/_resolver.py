"""Name lookups in a few threads shared by a worker process, so a sender waits for one no
longer than its request's deadline (getaddrinfo itself cannot be interrupted)."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

Addresses = list[tuple[Any, ...]]  # getaddrinfo's answers
Resolve = Callable[[str, int], Addresses]

THREADS = 4  # lookups at once; more wait their turn (and give up at their own deadline)


def getaddrinfo(host: str, port: int) -> Addresses:
    """The TCP addresses of `host` (what the OS resolver answers, however long it takes)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


class Resolver:
    """Runs `resolve` in up to `threads` daemon threads, started at the first lookup.

    Daemon threads, not a ThreadPoolExecutor: that one's threads are joined at exit, so a
    lookup a hostile name server never answers would hold up the worker's exit.
    """

    def __init__(self, resolve: Resolve = getaddrinfo, threads: int = THREADS) -> None:
        self._resolve = resolve
        self._threads = threads
        self._jobs: queue.SimpleQueue[tuple[Future[Addresses], str, int]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False

    def lookup(self, host: str, port: int) -> Future[Addresses]:
        """The addresses of `host`, in time (a lookup canceled before it starts never runs)."""
        if not self._started:
            self._start()
        future: Future[Addresses] = Future()
        self._jobs.put((future, host, port))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for n in range(self._threads):
                name = f"htq-resolver-{n}"
                threading.Thread(target=self._run, name=name, daemon=True).start()
            self._started = True

    def _run(self) -> None:
        while True:
            future, host, port = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._resolve(host, port))
            except BaseException as exc:  # the sender re-raises it
                future.set_exception(exc)


_shared: Resolver | None = None
_shared_lock = threading.Lock()


def shared() -> Resolver:
    """The process's resolver (of the OS), created at the first lookup."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Resolver()
        return _shared

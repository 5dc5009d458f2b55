"""Riding out Redis outages: retry with backoff, and say so once, not once per thread per retry."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from htq.store import REDIS_DOWN

log = logging.getLogger("htq.worker")

P = ParamSpec("P")
T = TypeVar("T")

FIRST_DELAY = 0.1
MAX_DELAY = 3.0


class GaveUp(Exception):
    """Redis stayed away until the caller stopped waiting for it (the worker is stopping)."""


class RedisHealth:
    """Whether Redis answers, shared by every thread of a worker, so an outage is logged once."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._down = False

    @property
    def down(self) -> bool:
        return self._down

    def call(
        self, until: threading.Event, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(...)`, retried with backoff while Redis is away; GaveUp once `until` is set."""
        delay = FIRST_DELAY
        while True:
            try:
                result = fn(*args, **kwargs)
            except REDIS_DOWN as exc:
                self.failed(exc)
                if until.wait(delay):
                    raise GaveUp(f"Redis at {self.address} unreachable") from exc
                delay = min(delay * 2, MAX_DELAY)
                continue
            self.succeeded()
            return result

    def attempt(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | None:
        """`fn(...)` once; None if Redis is unreachable (for periodic work that will come again)."""
        try:
            result = fn(*args, **kwargs)
        except REDIS_DOWN as exc:
            self.failed(exc)
            return None
        self.succeeded()
        return result

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
        log.warning("Redis at %s unreachable; retrying... (%s)", self.address, exc)

    def succeeded(self) -> None:
        if not self._down:  # the common case, without the lock
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
        log.warning("Redis is back")

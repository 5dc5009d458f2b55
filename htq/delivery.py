"""Delivery policy: retries with backoff, `Retry-After`, scheduling and callbacks (no I/O).

A request without any of these fields is sent once, as the spec says; the fields only add.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from htq.errors import InvalidField

MAX_RETRIES = 100
DEFAULT_RETRY_ON = (408, 429, 500, 502, 503, 504)
MAX_DELAY = 366 * 24 * 3600.0  # a request may be scheduled at most this far ahead (seconds)
MAX_BACKOFF = 24 * 3600.0
DELIVERY_FIELDS = frozenset(
    {"retries", "retry_on", "backoff", "delay", "not_before", "callback", "failure_callback"}
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds between attempts: after attempt n, `min * factor ** (n - 1)` plus a random part
    of up to half as much again (so that many failing at once spread out), never less than
    `min` nor more than `max`."""

    min: float = 1.0
    max: float = 300.0
    factor: float = 2.0

    def delay(
        self, attempt: int, retry_after: float | None = None, rand: float | None = None
    ) -> float:
        """Seconds before the attempt after `attempt` (1-based); a `Retry-After` wins, within
        `min` and `max`."""
        if retry_after is not None:
            return min(max(retry_after, self.min), self.max)
        base = min(self.max, self.min * self.factor ** min(attempt - 1, 1000))
        jitter = random.random() if rand is None else rand
        return min(self.max, base + base / 2 * jitter)

    def to_json(self) -> dict[str, float]:
        return {"min": _number(self.min), "max": _number(self.max), "factor": _number(self.factor)}


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a request is delivered beyond its one attempt; the defaults change nothing."""

    retries: int = 0
    retry_on: tuple[int, ...] = DEFAULT_RETRY_ON
    backoff: Backoff = field(default_factory=Backoff)
    callback: str | None = None
    failure_callback: str | None = None

    def to_stored(self) -> dict[str, Any]:
        """The non-default fields, as the request resource shows them."""
        stored: dict[str, Any] = {}
        if self.retries:
            stored["retries"] = self.retries
        if self.retry_on != DEFAULT_RETRY_ON:
            stored["retry_on"] = list(self.retry_on)
        if self.backoff != Backoff():
            stored["backoff"] = self.backoff.to_json()
        if self.callback:
            stored["callback"] = self.callback
        if self.failure_callback:
            stored["failure_callback"] = self.failure_callback
        return stored

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Delivery:
        backoff = stored.get("backoff")
        return cls(
            retries=int(stored.get("retries", 0)),
            retry_on=tuple(stored.get("retry_on", DEFAULT_RETRY_ON)),
            backoff=Backoff(**backoff) if backoff else Backoff(),
            callback=stored.get("callback"),
            failure_callback=stored.get("failure_callback"),
        )

    @property
    def has_callbacks(self) -> bool:
        return bool(self.callback or self.failure_callback)

    def failed(self, response: dict[str, Any]) -> bool:
        """An attempt that did not succeed: no response, or a code in `retry_on`."""
        return response["status"] != "success" or response.get("code") in self.retry_on

    def retry_after(self, response: dict[str, Any], now: float) -> float | None:
        """Seconds a 429 or 503 asked to wait (`Retry-After`: seconds or an HTTP date)."""
        if response.get("code") not in (429, 503):
            return None
        headers = response.get("headers") or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        return parse_retry_after(value, now)


NO_DELIVERY = Delivery()


def parse_retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def validate_delivery(payload: dict[str, Any], validate_url: Any) -> Delivery:
    """The delivery fields of a request description (`validate_url(value, field)` checks the
    callback URLs as `url` is checked)."""
    if not DELIVERY_FIELDS.intersection(payload):
        return NO_DELIVERY
    return Delivery(
        retries=_retries(payload.get("retries")),
        retry_on=_retry_on(payload.get("retry_on")),
        backoff=_backoff(payload.get("backoff")),
        callback=_callback(payload, "callback", validate_url),
        failure_callback=_callback(payload, "failure_callback", validate_url),
    )


def validate_due(payload: dict[str, Any], now_ms: int) -> int | None:
    """When a request is due (epoch ms), from `delay` or `not_before`; None: now."""
    delay, not_before = payload.get("delay"), payload.get("not_before")
    if delay is not None and not_before is not None:
        raise InvalidField("Give `delay` or `not_before`, not both.", "not_before")
    if delay is not None:
        seconds = _seconds(delay, "delay", low=0, high=MAX_DELAY)
        return now_ms + round(seconds * 1000) if seconds > 0 else None
    if not_before is None:
        return None
    due = _instant(not_before)
    if due > now_ms + MAX_DELAY * 1000:
        raise InvalidField(
            f"`not_before` is more than {MAX_DELAY / 86400:g} days ahead.", "not_before"
        )
    return due if due > now_ms else None


def _retries(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise InvalidField(
            f"`retries` must be a whole number from 0 to {MAX_RETRIES}, not {value!r}.", "retries"
        )
    return value


def _retry_on(value: Any) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_RETRY_ON
    if (
        not isinstance(value, list)
        or len(value) > 100
        or not all(
            isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
            for code in value
        )
    ):
        raise InvalidField(
            "`retry_on` must be an array of HTTP status codes (100-599), such as [429, 503].",
            "retry_on",
        )
    return tuple(sorted(set(value)))


def _backoff(value: Any) -> Backoff:
    if value is None:
        return Backoff()
    if not isinstance(value, dict):
        raise InvalidField(
            '`backoff` must be an object such as {"min": 1, "max": 300, "factor": 2}.', "backoff"
        )
    unknown = sorted(set(value) - {"min", "max", "factor"})
    if unknown:
        raise InvalidField(
            f"Unknown field(s) in `backoff`: {', '.join(unknown)}. Allowed: factor, max, min.",
            "backoff",
        )
    default = Backoff()
    low = _seconds(value.get("min", default.min), "backoff", low=0.01, high=MAX_BACKOFF, what="min")
    high = _seconds(
        value.get("max", default.max), "backoff", low=0.01, high=MAX_BACKOFF, what="max"
    )
    factor = _seconds(value.get("factor", default.factor), "backoff", low=1, high=10, what="factor")
    if high < low:
        raise InvalidField("`backoff.max` must be at least `backoff.min`.", "backoff")
    return Backoff(low, high, factor)


def _callback(payload: dict[str, Any], name: str, validate_url: Any) -> str | None:
    value = payload.get(name)
    return None if value is None else str(validate_url(value, name))


def _seconds(value: Any, name: str, *, low: float, high: float, what: str = "") -> float:
    label = f"{name}.{what}" if what else name
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(f"`{label}` must be a number, not {value!r}.", name)
    if not low <= value <= high:
        raise InvalidField(f"`{label}` must be from {low:g} to {high:g}, not {value}.", name)
    return float(value)


def _instant(value: Any) -> int:
    """Epoch milliseconds, or an ISO-8601 time with its zone, as epoch milliseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**53:
            raise InvalidField("`not_before` is out of range.", "not_before")
        return value
    if isinstance(value, str) and len(value) <= 64:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return round(when.timestamp() * 1000)
    raise InvalidField(
        "`not_before` must be epoch milliseconds or an ISO-8601 time with its zone, such as "
        f"2026-12-01T09:00:00Z, not {value!r}.",
        "not_before",
    )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value

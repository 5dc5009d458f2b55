"""The values store operations return, and the `Operation` they are built of."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from htq.models import RequestSpec, Status

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Operation(Generic[T]):
    """Commands sent in one round trip, and how their replies (one each) are read."""

    commands: tuple[tuple[Any, ...], ...]
    parse: Callable[[list[Any]], T]


@dataclass(frozen=True, slots=True)
class Claim:
    """A request a worker holds: it may store a result only while `token` is current."""

    uuid: str
    token: str
    attempts: int
    spec: RequestSpec


@dataclass(frozen=True, slots=True)
class CallbackJob:
    """A finished request's callback a worker holds (leased): it may settle it only while
    `token` is current. `attempts` tells one end of the request from another (a requeue).
    Fields are as stored, undecoded: one written by another htq is settled, not retried."""

    uuid: str
    token: str
    status: str  # as stored (the response is read when it is sent: `Store.callback_response`)
    request: str  # the request's stored description (JSON): `callback`, `retry_on`...
    summary: str  # the response's summary (JSON): its `code`, if it got one
    attempts: int


@dataclass(frozen=True, slots=True)
class Turn:
    """What one round trip of a worker's thread did (see `Store.turn`)."""

    stored: bool | None  # the result given was stored (False: refused; None: none given)
    claim: Claim | None  # the uuid given, now claimed (None: none given, or not queued)
    taken: str | None  # the next uuid taken from the queue, to claim on a later turn


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; `cursor` fetches the next page, None when this is the last."""

    items: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Enqueued:
    uuid: str
    replaced: str | None  # the uuid of an earlier unfinished request with the same `id`, if any
    # With an Idempotency-Key already used: its request's uuid (and `uuid` was not queued);
    # `conflict` when that request was described differently.
    existing: str | None = None
    conflict: bool = False


@dataclass(frozen=True, slots=True)
class Requeued:
    """What a requeue found: the status it had (None: unknown), and the request that replaced
    it or that holds its `id` now, queued or pending (then it was left alone)."""

    status: Status | None
    replaced_by: str | None = None
    held_by: str | None = None

    @property
    def done(self) -> bool:
        left = self.replaced_by is not None or self.held_by is not None
        return not left and self.status not in (None, *_UNFINISHED)


_UNFINISHED = (Status.QUEUED, Status.PENDING)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An `Idempotency-Key` and the fingerprint of the description it came with."""

    key: str
    fingerprint: str
    ttl: float  # seconds the key is remembered


@dataclass(frozen=True, slots=True)
class Answer:
    """A request's status and its stored response, as stored (JSON bytes); either may be None."""

    status: Status | None
    raw: bytes | None

    @property
    def resource(self) -> dict[str, Any] | None:
        """The response, decoded."""
        return json.loads(self.raw) if self.raw else None

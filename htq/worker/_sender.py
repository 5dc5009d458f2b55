"""One sender thread: take a request, send it, store the result (or honour a cancel), repeat."""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from htq.config import WorkerConfig
from htq.models import ATTEMPT, REQUEST_ID, RequestSpec, Status, now_ms
from htq.outbound import Outbound
from htq.signing import Signer
from htq.store import Claim, Store
from htq.worker._exchange import send, send_delete
from htq.worker._health import GaveUp, RedisHealth
from htq.worker._in_flight import InFlight, Interrupt
from htq.worker._transport import InterruptibleTransport

log = logging.getLogger("htq.worker")

WAIT = 1.0  # seconds a thread blocks for work before looking at the stop flag again


class Ready:
    """Uuids the worker took from the queue ahead of need, for whichever thread is free next.

    A busy thread stores its result, claims a uuid from here and takes the next one from the
    queue in one round trip (`Store.turn`), so a request costs one round trip, not two. Taking
    ahead never starves an idle thread: Redis hands a pushed uuid to a client blocked on the
    queue (any worker's) before a later LMOVE can take it, and a uuid taken while a thread of
    this worker is about to wait goes back to the queue (`offer` refuses it). At most `limit`
    wait here; one left here while every thread is busy goes back to the queue by the reaper's
    rescue of `claiming` (two reaper periods), and a stopping worker hands back the rest.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._uuids: collections.deque[str] = collections.deque()
        self._waiting = 0  # threads waiting on the queue itself
        self._lock = threading.Lock()

    def pop(self, *, or_wait: bool = False) -> str | None:
        """The oldest uuid here; with `or_wait`, if there is none, count the caller as waiting
        for the queue (until `done_waiting`)."""
        with self._lock:
            if self._uuids:
                return self._uuids.popleft()
            if or_wait:
                self._waiting += 1
            return None

    def done_waiting(self) -> None:
        with self._lock:
            self._waiting -= 1

    def offer(self, uuid: str) -> bool:
        """Keep `uuid` for the next free thread; False if a thread waits on the queue instead
        (the uuid must go back to the queue, where that thread will get it)."""
        with self._lock:
            if self._waiting:
                return False
            self._uuids.append(uuid)
            return True

    def has_room(self) -> bool:
        return len(self._uuids) < self._limit

    def drain(self) -> list[str]:
        with self._lock:
            uuids = list(self._uuids)
            self._uuids.clear()
            return uuids


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderContext:
    """What a worker's threads share."""

    config: WorkerConfig
    store: Store
    health: RedisHealth
    worker_id: str
    stopping: threading.Event  # stop taking new requests
    aborting: threading.Event  # stop waiting for Redis: the grace period is over
    ready: Ready
    outbound: Outbound  # where requests may go
    signer: Signer | None  # signs every request sent (--signing-secret)


@dataclass(frozen=True, slots=True)
class Sent:
    """A request sent, its result waiting to be stored on the thread's next turn."""

    claim: Claim
    spec: RequestSpec
    response: dict[str, Any]
    due: int | None = None  # a failed attempt to try again then (epoch ms)


class Sender:
    """A thread sending one request at a time over its own keep-alive transport."""

    def __init__(self, context: SenderContext, name: str) -> None:
        self.in_flight = InFlight()
        self._context = context
        self._sent: Sent | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # Who claims (the `worker` of the requests it holds): this thread of this worker, so
        # that a claim Redis ran but whose answer was lost is recognised when sent again.
        self.holder = f"{context.worker_id}/{name}"

    @property
    def busy(self) -> bool:
        return self.in_flight.claim is not None

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        context = self._context
        try:
            with InterruptibleTransport(
                self.in_flight, trust_env=context.config.trust_env, outbound=context.outbound
            ) as transport:
                while True:
                    try:
                        if not self._turn(transport):
                            break
                    except GaveUp:
                        break
                    except Exception:  # keep the thread alive; the reaper takes the claim back
                        log.exception("Unexpected error in %s; carrying on", self._thread.name)
                        self._sent = None
                        self.in_flight.release()
                        context.stopping.wait(1.0)
        finally:
            context.store.close_thread_wire()

    def _turn(self, transport: httpx.BaseTransport) -> bool:
        """Store the last result, claim the next request and send it; False when done."""
        context = self._context
        sent, self._sent = self._sent, None
        stopping = context.stopping.is_set()
        uuid = None if stopping else context.ready.pop(or_wait=sent is None)
        if uuid is None and sent is None:
            if stopping:
                return False
            try:
                uuid = context.health.call(context.stopping, context.store.wait_for_work, WAIT)
            finally:
                context.ready.done_waiting()
            if uuid is None:
                return True
        take = not context.stopping.is_set() and context.ready.has_room()
        try:
            turn = context.health.call(
                context.aborting,
                context.store.turn,
                result=(sent.claim, sent.response) if sent else None,
                retry_at=sent.due if sent else None,
                claim=uuid,
                worker=self.holder,
                lease=context.config.lease,
                take=take,
            )
        except GaveUp:
            if sent is not None:
                log.warning(
                    "[%s] result not stored (Redis away); it will be sent again", sent.claim.uuid
                )
            raise
        finally:
            self.in_flight.release()  # the result is settled, one way or the other
        if turn.taken is not None and not context.ready.offer(turn.taken):
            context.health.call(context.aborting, context.store.untake, [turn.taken])
        if sent is not None:
            self._settled(transport, sent, stored=bool(turn.stored))
        if turn.claim is not None:
            if context.stopping.is_set():
                context.health.call(context.aborting, context.store.release, turn.claim)
            else:
                self._sent = self._deliver(transport, turn.claim)
        return True

    def _deliver(self, transport: httpx.BaseTransport, claim: Claim) -> Sent | None:
        """Send a claimed request; what to store, or None if it was dropped or handed back.

        The claim stays held (in flight) until its result is stored, so heartbeats keep renewing it
        (while Redis is away, too).
        """
        uuid = claim.uuid
        spec = claim.spec
        log.debug("[%s] sending request...", uuid)
        self.in_flight.begin(claim, spec.timeout)
        try:
            context = self._context
            extra = _attempt_headers(claim) if spec.delivery.retries else None
            response = send(
                transport, spec, uuid, context.config.max_response_bytes, context.signer, extra
            )
        finally:
            reason = self.in_flight.sent()
        answered = response["status"] == Status.SUCCESS
        if reason is None or (reason is Interrupt.SHUTDOWN and answered):
            return Sent(claim, spec, response, _next_attempt(claim, response))
        try:
            if reason is Interrupt.CANCELED:
                self._canceled(transport, claim)
            elif reason is Interrupt.TAKEN_BACK:
                log.debug("[%s] taken back from this worker; dropped", uuid)
            else:
                self._hand_back(transport, claim)
        finally:
            self.in_flight.release()
        return None

    def _settled(self, transport: httpx.BaseTransport, sent: Sent, *, stored: bool) -> None:
        uuid = sent.claim.uuid
        if stored and sent.due is not None:
            wait = max(0.0, (sent.due - now_ms()) / 1000)
            log.debug("[%s] attempt %d failed; next in %.1f s", uuid, sent.claim.attempts, wait)
            return
        if stored:
            _log_result(uuid, sent.response)
            return
        context = self._context
        status = context.health.call(context.aborting, context.store.status, uuid)
        if status is Status.CANCELED:
            self._canceled(transport, sent.claim)
        else:
            log.debug("[%s] result refused: taken back from this worker", uuid)

    def _canceled(self, transport: httpx.BaseTransport, claim: Claim) -> None:
        log.debug("[%s] canceled", claim.uuid)
        send_delete(transport, claim.spec, claim.uuid, self._context.signer, claim.attempts)

    def _hand_back(self, transport: httpx.BaseTransport, claim: Claim) -> None:
        context = self._context
        if context.health.call(context.aborting, context.store.release, claim):
            log.debug("[%s] handed back to the queue", claim.uuid)
            return
        status = context.health.call(context.aborting, context.store.status, claim.uuid)
        if status is Status.CANCELED:
            self._canceled(transport, claim)


def _attempt_headers(claim: Claim) -> dict[str, str]:
    """So that a target can tell a repeat: the request's uuid and the attempt's number."""
    return {REQUEST_ID: claim.uuid, ATTEMPT: str(claim.attempts)}


def _next_attempt(claim: Claim, response: dict[str, Any]) -> int | None:
    """When to try a failed attempt again (epoch ms), if attempts remain; else None."""
    delivery = claim.spec.delivery
    if claim.attempts > delivery.retries or not delivery.failed(response):
        return None
    now = time.time()
    wait = delivery.backoff.delay(claim.attempts, delivery.retry_after(response, now))
    return round((now + wait) * 1000)


def _log_result(uuid: str, response: dict[str, Any]) -> None:
    status = response["status"]
    if status == Status.SUCCESS:
        log.debug("[%s] response received", uuid)
    elif status == Status.TIMEOUT:
        log.debug("[%s] timed out", uuid)
    else:
        log.debug("[%s] error: %s", uuid, response["message"])

"""Callbacks: a finished request's response POSTed to its `callback` (or `failure_callback`), at
least once, from threads of their own, at most PER_HOST at a time to one host; each try and
the whole callback within a deadline, a few KiB of the answer read; the outcome kept as
`callback_result`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter, deque
from typing import Any

import httpx

from htq.delivery import Delivery
from htq.masking import mask_url
from htq.models import REQUEST_ID, RequestSpec, Status, now_ms
from htq.outbound import Outbound
from htq.signing import Signer
from htq.store import CallbackJob, Claim, Store
from htq.worker._body import read_raw
from htq.worker._exchange import describe, open_request, refused_by_guard
from htq.worker._health import GaveUp, RedisHealth
from htq.worker._in_flight import InFlight, Interrupt
from htq.worker._transport import InterruptibleTransport

log = logging.getLogger("htq.worker")

ATTEMPTS = 3  # tries of one callback
BACKOFF = (1.0, 4.0)  # seconds before the second and the third
TRY_TIMEOUT = 10.0  # seconds one try may take, whole: connect, send, answer
DEADLINE = ATTEMPTS * TRY_TIMEOUT + sum(BACKOFF)  # seconds the whole callback may take
ANSWER_BYTES = 4096  # read of the receiver's answer, undecoded; the rest is never read
THREADS = 16  # callbacks a worker sends at once (threads started when first needed)
PER_HOST = 2  # of them to one host, by name: its ports are one service
PARKED = 1000  # callbacks a worker keeps (leased) waiting for their busy host's turn
BUSY_WAIT = 5.0  # seconds one waits in Redis instead, when PARKED are waiting already
WAIT = 1.0  # seconds the taker blocks waiting for a callback before it looks at `stop`

_Send = tuple[CallbackJob, str, str]  # the job, its URL, its host


class Callbacks:
    """A taker thread leasing the callbacks of finished requests, and up to `threads` senders
    (each started when first needed: an unused feature costs no thread). A callback to a host
    with PER_HOST in flight waits here for its turn; the worker's heartbeat renews the leases
    of all held ones (`held`, `not_held`)."""

    def __init__(
        self,
        store: Store,
        health: RedisHealth,
        stop: threading.Event,
        *,
        outbound: Outbound,
        signer: Signer | None,
        trust_env: bool,
        lease: float = 10.0,
        threads: int = THREADS,
    ) -> None:
        self._store = store
        self._health = health
        self._stop = stop
        self._outbound = outbound
        self._signer = signer
        self._trust_env = trust_env
        self._lease = lease
        self._free = threading.Semaphore(threads)  # a sender for each callback taken
        self._sends: queue.SimpleQueue[_Send | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy: Counter[str] = Counter()  # host -> callbacks being sent to it
        self._parked: dict[str, deque[_Send]] = {}  # host -> callbacks waiting for its turn
        self._waiting = 0  # parked callbacks, all hosts
        self._held: dict[tuple[str, str], CallbackJob] = {}  # (uuid, token) -> leased job
        self._spare = 0  # senders waiting for a callback that none is queued for yet
        self._in_flight: list[InFlight] = []  # one per sender, started when first needed
        self.threads = [threading.Thread(target=self._take, name="htq-callbacks", daemon=True)]

    def start(self) -> None:
        self.threads[0].start()

    def join(self, timeout: float) -> None:
        for thread in list(self.threads):
            thread.join(timeout)

    def interrupt(self) -> None:
        """Stop the callbacks in flight (the worker is stopping; `stop` is set): each goes
        back to the list, for another worker to send."""
        for in_flight in list(self._in_flight):
            in_flight.interrupt(Interrupt.SHUTDOWN)

    def held(self) -> list[CallbackJob]:
        """The callbacks this worker holds (sending, or waiting for their host): their leases
        to renew."""
        with self._lock:
            return list(self._held.values())

    def not_held(self, job: CallbackJob) -> None:
        """Its lease ran out (Redis was away, say): another worker sends it. One waiting here
        is dropped; one being sent is fenced when it settles."""
        with self._lock:
            for host, waiting in list(self._parked.items()):
                for send in waiting:
                    if send[0] is job:
                        waiting.remove(send)
                        self._waiting -= 1
                        self._held.pop((job.uuid, job.token), None)
                        if not waiting:
                            del self._parked[host]
                        break
        log.debug("[%s] callback no longer held", job.uuid)

    # -- the taker ---------------------------------------------------------------------------

    def _take(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if self._free.acquire(timeout=WAIT):
                        handed = False
                        try:
                            handed = self._take_one(WAIT)
                        finally:
                            if not handed:
                                self._free.release()
                except GaveUp:
                    return
                except Exception:  # one callback's bug must not end them all
                    log.exception("Unexpected error in %s", threading.current_thread().name)
                    self._stop.wait(1.0)
        finally:
            self._hand_back_parked()
            for _ in list(self._in_flight):
                self._sends.put(None)
            self._store.close_thread_wire()

    def _take_one(self, wait: float) -> bool:
        """Lease the next callback and hand it to a sender; False if none was handed (none
        taken, nothing to send, or it waits for its host)."""
        uuid = self._health.call(self._stop, self._store.wait_for_callback, wait)
        if uuid is None:
            return False
        job = self._health.call(self._stop, self._store.take_callback, uuid, self._lease)
        if job is None:
            return False  # nothing to send: expired, or queued again (its next end calls back)
        try:
            url = _url_of(job)
        except Exception as exc:  # written by another htq, say: taken again, it would fail again
            log.warning("[%s] callback not sent: its stored request cannot be read", job.uuid)
            error = f"htq could not read the stored request: {exc!r}"
            self._health.call(
                self._stop, self._store.called_back, job, {"url": "", "attempts": 1, "error": error}
            )
            return False
        if url is None:
            self._health.call(self._stop, self._store.called_back, job, None)
            return False
        send = (job, url, _host(url))
        where = self._queue(send)
        if where == "parked":
            return False
        if where == "full":  # its turn comes again after BUSY_WAIT, at the end of the line
            due = now_ms() + int(BUSY_WAIT * 1000)
            self._health.call(self._stop, self._store.put_back_callback, job, due)
            return False
        return self._hand(send)

    def _queue(self, send: _Send) -> str:
        """Count a callback to its host: "send" now, "parked" until its host's turn, or
        "full" (too many waiting here already)."""
        job, _, host = send
        with self._lock:
            if self._busy[host] < PER_HOST:
                self._busy[host] += 1
                where = "send"
            elif self._waiting < PARKED:
                self._parked.setdefault(host, deque()).append(send)
                self._waiting += 1
                where = "parked"
            else:
                return "full"
            self._held[job.uuid, job.token] = job
            return where

    def _hand(self, send: _Send) -> bool:
        """Queue a counted callback for a sender; if none can be had, uncount it and put it
        back (False)."""
        try:
            self._enough_senders()
        except Exception:  # e.g. no thread can be started now: another turn, or another worker
            log.exception("No sender for a callback; putting it back")
            job, _, host = send
            with self._lock:
                self._held.pop((job.uuid, job.token), None)
                self._uncount(host)
            self._health.call(self._stop, self._store.put_back_callback, job)
            return False
        self._sends.put(send)
        return True

    def _enough_senders(self) -> None:
        """A sender for the callback about to be queued: a waiting one, or a new one (a free
        slot was taken, so there are fewer than `threads`)."""
        with self._lock:
            if self._spare:
                self._spare -= 1
                return
        in_flight = InFlight()
        name = f"htq-callbacks-{len(self._in_flight) + 1}"
        thread = threading.Thread(target=self._send, args=(in_flight,), name=name, daemon=True)
        thread.start()
        with self._lock:
            self._in_flight.append(in_flight)
        self.threads.append(thread)

    def _uncount(self, host: str) -> None:
        self._busy[host] -= 1
        if not self._busy[host]:
            del self._busy[host]

    def _hand_back_parked(self) -> None:
        """The worker stops: the callbacks waiting here go back, for another worker."""
        with self._lock:
            waiting = [send for sends in self._parked.values() for send in sends]
            self._parked.clear()
            self._waiting = 0
            for job, _, _ in waiting:
                self._held.pop((job.uuid, job.token), None)
        for job, _, _ in waiting:
            self._health.attempt(self._store.put_back_callback, job)

    # -- the senders -------------------------------------------------------------------------

    def _send(self, in_flight: InFlight) -> None:
        try:
            with InterruptibleTransport(
                in_flight, trust_env=self._trust_env, outbound=self._outbound
            ) as transport:
                send = self._sends.get()
                while send is not None:
                    job, url, host = send
                    try:
                        self._call_back(transport, in_flight, job, url)
                    except GaveUp:
                        pass  # stopping with Redis away: its lease runs out, another sends it
                    except Exception:  # one callback's bug must not end them all
                        log.exception("Unexpected error in %s", threading.current_thread().name)
                    finally:
                        after = self._done(job, host)
                    send = after if after is not None else self._sends.get()
        finally:
            self._store.close_thread_wire()

    def _done(self, job: CallbackJob, host: str) -> _Send | None:
        """The next callback waiting for this host, kept by this sender (it keeps the host's
        turn and its slot); or None, the slot given back."""
        with self._lock:
            self._held.pop((job.uuid, job.token), None)
            if waiting := self._parked.get(host):
                after = waiting.popleft()
                self._waiting -= 1
                if not waiting:
                    del self._parked[host]
                return after
            self._uncount(host)
            self._spare += 1  # this sender waits for the next
        self._free.release()
        return None

    def _call_back(
        self, transport: httpx.BaseTransport, in_flight: InFlight, job: CallbackJob, url: str
    ) -> None:
        if self._stop.is_set():  # the worker is stopping: another worker sends it
            self._health.attempt(self._store.put_back_callback, job)
            return
        body = self._health.call(self._stop, self._store.callback_response, job)
        if body is None:  # no longer held (sent by another), or its response was deleted
            self._health.call(self._stop, self._store.called_back, job, None)
            return
        result = self._deliver(transport, in_flight, job, url, body)
        if result is None:  # the worker is stopping: another worker sends it
            self._health.attempt(self._store.put_back_callback, job)
            return
        self._health.call(self._stop, self._store.called_back, job, result)
        shown = {k: v for k, v in result.items() if k != "url"}
        log.debug("[%s] callback to %s: %s", job.uuid, mask_url(url), shown)

    def _deliver(
        self,
        transport: httpx.BaseTransport,
        in_flight: InFlight,
        job: CallbackJob,
        url: str,
        body: bytes,
    ) -> dict[str, Any] | None:
        """POST the response, tried up to ATTEMPTS times within DEADLINE: any answer below
        500 other than 408 and 429 ends the tries (the receiver has spoken), and so does a
        refusal by the outbound guard. None if interrupted (the worker is stopping)."""
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # what is read of the answer is never decoded
            REQUEST_ID: job.uuid,
        }
        headers = Signer.sign(self._signer, _message_id(job), headers, body)
        spec = RequestSpec(url=url, method="POST", headers={}, data=None, timeout=TRY_TIMEOUT)
        claim = Claim(job.uuid, "callback", 0, spec)
        deadline = time.monotonic() + DEADLINE
        result: dict[str, Any] = {"url": url}
        for attempt in range(1, ATTEMPTS + 1):
            timeout = min(TRY_TIMEOUT, deadline - time.monotonic())
            tried = self._try(transport, in_flight, claim, headers, body, timeout)
            if tried is None:
                return None
            outcome, final = tried
            result = {"url": url, "attempts": attempt, **outcome}
            if final or attempt == ATTEMPTS:
                break
            pause = min(BACKOFF[attempt - 1], deadline - time.monotonic())
            if pause <= 0:
                break
            if self._stop.wait(pause):
                return None
        return result

    def _try(
        self,
        transport: httpx.BaseTransport,
        in_flight: InFlight,
        claim: Claim,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[dict[str, Any], bool] | None:
        """One POST within `timeout` seconds, whole: the outcome and whether it is final; None
        if interrupted."""
        in_flight.begin(claim, timeout)  # the whole try's deadline, kept by the network backend
        try:
            tried = None if self._stop.is_set() else _post(transport, claim, headers, body, timeout)
        finally:
            interrupted = in_flight.sent() is not None
            in_flight.release()
        return None if interrupted else tried


def _post(
    transport: httpx.BaseTransport,
    claim: Claim,
    headers: dict[str, str],
    body: bytes,
    timeout: float,
) -> tuple[dict[str, Any], bool]:
    """The outcome of one POST, and whether it is final."""
    try:
        with open_request(transport, "POST", claim.spec.url, headers, body, timeout) as answer:
            read_raw(answer, ANSWER_BYTES)  # only its code is kept: the rest is never read
            code = answer.status_code
    except Exception as exc:  # the callback's own failure is recorded, never raised
        return {"error": describe(exc)}, refused_by_guard(exc)
    return {"code": code}, code < 500 and code not in (408, 429)


def _message_id(job: CallbackJob) -> str:
    """The callback's `webhook-id`: its own (the request's is its uuid: a receiver that drops
    repeated ids would drop one), the same on each try and redelivery of this end's callback,
    another for the next end (a requeue)."""
    return f"{job.uuid}-callback-{job.attempts}"


def _url_of(job: CallbackJob) -> str | None:
    """The URL this end of the request calls back: `failure_callback` if it failed (its
    summary's code is one of `retry_on`, or it got no response)."""
    delivery = Delivery.from_stored(json.loads(job.request))
    failed = job.status != Status.SUCCESS
    if not failed:
        summary: dict[str, Any] = json.loads(job.summary)
        failed = delivery.failed({**summary, "status": Status.SUCCESS})
    return delivery.failure_callback if failed else delivery.callback


def _host(url: str) -> str:
    """What the per-host bound counts: the host's name (its ports are one service)."""
    try:
        return httpx.URL(url).host.rstrip(".")
    except httpx.InvalidURL:
        return url

"""Callbacks: when a request with `callback` or `failure_callback` finishes, a POST of its
response resource to the URL, from threads of their own (a slow callback target never holds
a sender thread), a few attempts with backoff, the outcome kept as `callback_result`.

The finished request's uuid is in the store's callback list (put there by the script that
finished it); a worker that dies while calling back loses that one callback (at most once).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx

from htq.delivery import Delivery
from htq.models import RequestSpec, Status
from htq.outbound import Outbound
from htq.signing import Signer
from htq.store import Claim, Store
from htq.worker._exchange import describe, open_request
from htq.worker._health import GaveUp, RedisHealth
from htq.worker._in_flight import InFlight, Interrupt
from htq.worker._transport import InterruptibleTransport

log = logging.getLogger("htq.worker")

ATTEMPTS = 3  # tries of one callback
BACKOFF = (1.0, 4.0)  # seconds before the second and the third
TIMEOUT = 10.0  # seconds each try may take
WAIT = 1.0  # seconds a callback thread blocks waiting for work before it looks at `stop`


class Callbacks:
    """`threads` threads sending the callbacks of finished requests until `stop`."""

    def __init__(
        self,
        store: Store,
        health: RedisHealth,
        stop: threading.Event,
        *,
        outbound: Outbound,
        signer: Signer | None,
        trust_env: bool,
        threads: int = 2,
    ) -> None:
        self._store = store
        self._health = health
        self._stop = stop
        self._outbound = outbound
        self._signer = signer
        self._trust_env = trust_env
        self._in_flight = [InFlight() for _ in range(threads)]
        self.threads = [
            threading.Thread(
                target=self._run, args=(in_flight,), name=f"htq-callbacks-{n}", daemon=True
            )
            for n, in_flight in enumerate(self._in_flight, start=1)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def interrupt(self) -> None:
        """Stop the callbacks in flight (the worker is stopping; `stop` is set): each goes
        back to the list, for another worker to send."""
        for in_flight in self._in_flight:
            in_flight.interrupt(Interrupt.SHUTDOWN)

    def _run(self, in_flight: InFlight) -> None:
        try:
            with InterruptibleTransport(
                in_flight, trust_env=self._trust_env, outbound=self._outbound
            ) as transport:
                while not self._stop.is_set():
                    try:
                        uuid = self._health.call(self._stop, self._store.next_callback, WAIT)
                        if uuid is not None:
                            self._call_back(transport, in_flight, uuid)
                    except GaveUp:
                        return
                    except Exception:  # one callback's bug must not end them all
                        log.exception("Unexpected error in %s", threading.current_thread().name)
                        self._stop.wait(1.0)
        finally:
            self._store.close_thread_wire()

    def _call_back(self, transport: httpx.BaseTransport, in_flight: InFlight, uuid: str) -> None:
        status, stored, raw = self._health.call(self._stop, self._store.callback_job, uuid)
        if status is None or not raw:
            return  # expired, or requeued meanwhile (its next end calls back again)
        delivery = Delivery.from_stored(stored)
        response: dict[str, Any] = json.loads(raw)
        failed = status is not Status.SUCCESS or delivery.failed(response)
        url = delivery.failure_callback if failed else delivery.callback
        if url is None:
            return
        spec = RequestSpec(url=url, method="POST", headers={}, data=None, timeout=TIMEOUT)
        in_flight.begin(Claim(uuid, "callback", 0, spec), ATTEMPTS * (TIMEOUT + BACKOFF[-1]))
        try:
            result = self._post(transport, uuid, url, raw)
        finally:
            interrupted = in_flight.sent() is not None
            in_flight.release()
        if interrupted:  # the worker is stopping: another worker sends it
            self._health.attempt(self._store.put_back_callback, uuid)
            return
        self._health.call(self._stop, self._store.called_back, uuid, result)
        log.debug("[%s] callback to %s: %s", uuid, url, result)

    def _post(
        self, transport: httpx.BaseTransport, uuid: str, url: str, body: bytes
    ) -> dict[str, Any]:
        """POST the response, tried up to ATTEMPTS times: any answer below 500 other than 408
        and 429 ends the tries (the target has spoken)."""
        headers = {"Content-Type": "application/json", "Htq-Request-Id": uuid}
        headers = Signer.sign(self._signer, uuid, headers, body)
        result: dict[str, Any] = {"url": url}
        for attempt in range(1, ATTEMPTS + 1):
            result["attempts"] = attempt
            try:
                with open_request(transport, "POST", url, headers, body, TIMEOUT) as answer:
                    answer.read()
                    result.pop("error", None)
                    result["code"] = answer.status_code
            except Exception as exc:  # the callback's own failure is recorded, never raised
                result.pop("code", None)
                result["error"] = describe(exc)
            code = result.get("code")
            if code is not None and code < 500 and code not in (408, 429):
                break
            if attempt < ATTEMPTS and self._stop.wait(BACKOFF[attempt - 1]):
                break  # stopping: put back (see _call_back)
        return result

"""One sender thread: take a request, send it, store the result (or honour a cancel), repeat."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from htq.config import WorkerConfig
from htq.models import RequestSpec, Status
from htq.store import Claim, Store
from htq.worker._health import GaveUp, RedisHealth
from htq.worker._line import Interrupt, Line
from htq.worker._send import new_client, send, send_delete

log = logging.getLogger("htq.worker")

WAIT = 1.0  # seconds a thread blocks for work before looking at the stop flag again


@dataclass(frozen=True, slots=True)
class Shared:
    """What a worker's threads share."""

    config: WorkerConfig
    store: Store
    health: RedisHealth
    worker_id: str
    stopping: threading.Event  # stop taking new requests
    aborting: threading.Event  # stop waiting for Redis: the grace period is over


class Sender:
    """A thread sending one request at a time over its own keep-alive httpx client."""

    def __init__(self, shared: Shared, name: str) -> None:
        self.line = Line()
        self._shared = shared
        self._taken: str | None = None  # a uuid taken from the queue with the last result
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def busy(self) -> bool:
        return self.line.claim is not None

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        shared = self._shared
        with new_client(self.line, trust_env=shared.config.trust_env) as client:
            while not shared.stopping.is_set():
                try:
                    claim = self._next_claim()
                    if claim is not None:
                        self._handle(client, claim)
                except GaveUp:
                    break
                except Exception:  # keep the thread alive; the reaper recovers a lost claim
                    log.exception("Unexpected error in %s; carrying on", self._thread.name)
                    shared.stopping.wait(1.0)
                finally:
                    self.line.release()
            if self._taken is not None:  # stopping: hand it back rather than wait for the reaper
                with contextlib.suppress(GaveUp):
                    self._next_claim()

    def _next_claim(self) -> Claim | None:
        shared = self._shared
        uuid, self._taken = self._taken, None
        if uuid is None:
            uuid = shared.health.call(shared.stopping, shared.store.wait_for_work, WAIT)
        if uuid is None:
            return None
        claim = shared.health.call(
            shared.aborting, shared.store.claim, uuid, shared.worker_id, shared.config.lease
        )
        if claim is not None and shared.stopping.is_set():
            shared.health.call(shared.aborting, shared.store.release, claim)
            return None
        return claim

    def _handle(self, client: httpx.Client, claim: Claim) -> None:
        uuid = claim.uuid
        spec = RequestSpec.from_resource(claim.request)
        log.debug("[%s] sending request...", uuid)
        self.line.begin(claim, spec.timeout)
        try:
            response = send(client, spec, uuid, self._shared.config.max_response_bytes)
        finally:
            reason = self.line.sent()
        if reason is Interrupt.CANCELED:
            self._canceled(client, spec, uuid)
        elif reason is Interrupt.LOST:
            log.debug("[%s] taken back from this worker; dropped", uuid)
        elif reason is Interrupt.SHUTDOWN and response["status"] != Status.SUCCESS:
            self._hand_back(client, spec, claim)
        else:
            self._store(client, claim, spec, response)

    def _store(
        self, client: httpx.Client, claim: Claim, spec: RequestSpec, response: dict[str, Any]
    ) -> None:
        """Store the result, retrying while Redis is away: it is dropped only if the claim is."""
        shared = self._shared
        take = not shared.stopping.is_set()
        try:
            stored, self._taken = shared.health.call(
                shared.aborting, shared.store.complete_and_take, claim, response, take=take
            )
        except GaveUp:
            log.warning("[%s] result not stored (Redis away); it will be sent again", claim.uuid)
            raise
        if stored:
            _log_result(claim.uuid, response)
            return
        status = shared.health.call(shared.aborting, shared.store.status, claim.uuid)
        if status is Status.CANCELED:
            self._canceled(client, spec, claim.uuid)
        else:
            log.debug("[%s] result refused: taken back from this worker", claim.uuid)

    def _canceled(self, client: httpx.Client, spec: RequestSpec, uuid: str) -> None:
        log.debug("[%s] canceled", uuid)
        send_delete(client, spec, uuid)

    def _hand_back(self, client: httpx.Client, spec: RequestSpec, claim: Claim) -> None:
        shared = self._shared
        if shared.health.call(shared.aborting, shared.store.release, claim):
            log.debug("[%s] handed back to the queue", claim.uuid)
            return
        status = shared.health.call(shared.aborting, shared.store.status, claim.uuid)
        if status is Status.CANCELED:
            self._canceled(client, spec, claim.uuid)


def _log_result(uuid: str, response: dict[str, Any]) -> None:
    status = response["status"]
    if status == Status.SUCCESS:
        log.debug("[%s] response received", uuid)
    elif status == Status.TIMEOUT:
        log.debug("[%s] timed out", uuid)
    else:
        log.debug("[%s] error: %s", uuid, response["message"])

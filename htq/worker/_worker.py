"""A worker: N sender threads, a heartbeat, a reaper and a cancel listener; and its shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

from htq.config import WorkerConfig, describe_redis
from htq.masking import MaskPasswords
from htq.models import Status
from htq.outbound import Outbound
from htq.signing import Signer
from htq.store import Claim, Store, worker_store
from htq.worker._callbacks import Callbacks
from htq.worker._health import RedisHealth
from htq.worker._in_flight import Interrupt
from htq.worker._sender import Ready, Sender, SenderContext

log = logging.getLogger("htq.worker")
log.addFilter(MaskPasswords())  # every worker module logs here: URLs never with a password

REAP_PERIOD = 1.0  # seconds between attempts to lead the reaper
SERVERS_PERIOD = 5.0  # seconds between looks at where htq's servers listen (never sent to)
HAND_BACK = 5.0  # seconds stopping threads get to hand their requests back after the grace


class Worker:
    """Sends queued requests on `config.threads` threads until stopped.

    worker = Worker(config).start()
    ...
    worker.stop()       # stop taking requests; in-flight ones get `grace` seconds
    """

    def __init__(
        self, config: WorkerConfig, store: Store | None = None, server_ports: tuple[int, ...] = ()
    ) -> None:
        """`server_ports`: where the server of the same process (`htq up`) listens; the
        others are learnt from the store."""
        self.config = config
        self.store = store or worker_store(config.store)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.health = RedisHealth(describe_redis(config.store.redis_url))
        self._stopping = threading.Event()
        self._aborting = threading.Event()
        self._forced = threading.Event()
        self._done = threading.Event()
        self._ready = Ready(config.threads)
        context = SenderContext(
            config=config,
            store=self.store,
            health=self.health,
            worker_id=self.id,
            stopping=self._stopping,
            aborting=self._aborting,
            ready=self._ready,
            outbound=Outbound.of(config.outbound, config.store.redis_url, server_ports),
            signer=Signer(config.signing_secrets) if config.signing_secrets else None,
        )
        self.outbound = context.outbound
        self.senders = [Sender(context, f"htq-sender-{n}") for n in range(1, config.threads + 1)]
        self._services = [
            threading.Thread(
                target=self._every, args=(config.lease / 3, self._heartbeat),
                name="htq-heartbeat", daemon=True,
            ),
            threading.Thread(
                target=self._every, args=(REAP_PERIOD, self._reap), name="htq-reaper", daemon=True
            ),
            threading.Thread(target=self._keep_due, name="htq-scheduler", daemon=True),
            threading.Thread(
                target=self._every, args=(SERVERS_PERIOD, self._learn_servers),
                name="htq-servers", daemon=True,
            ),
        ]  # fmt: skip
        self.callbacks = Callbacks(
            self.store, self.health, self._stopping, outbound=context.outbound,
            signer=context.signer, trust_env=config.trust_env, lease=config.lease,
        )  # fmt: skip
        self._exit = contextlib.ExitStack()

    @property
    def in_flight(self) -> int:
        return sum(sender.busy for sender in self.senders)

    def start(self) -> Worker:
        self._learn_servers()
        self._exit.enter_context(self.store.cancellations(self._on_cancel))
        for thread in self._services:
            thread.start()
        self.callbacks.start()
        for sender in self.senders:
            sender.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop taking requests, give in-flight ones `grace` seconds, then hand the rest back."""
        grace = self.config.grace if grace is None else grace
        self._stopping.set()
        self.callbacks.interrupt()
        self.health.attempt(self.store.wake_schedulers)  # others' schedulers look once more
        self._wake_waiting()
        if self.in_flight:
            log.info(
                "Stopping: %d request(s) in flight get %gs to finish (interrupt again to hand "
                "them back now)",
                self.in_flight,
                grace,
            )
        deadline = time.monotonic() + grace
        while self.in_flight and time.monotonic() < deadline and not self._forced.wait(0.05):
            pass
        for sender in self.senders:
            sender.in_flight.interrupt(Interrupt.SHUTDOWN)
        # Cancels no longer interrupt anything: stop listening while the threads hand back.
        listener = threading.Thread(target=self._exit.close, name="htq-stop-listening")
        listener.start()
        self._join_senders(time.monotonic() + HAND_BACK)
        self._aborting.set()  # whatever still waits for Redis gives up; its lease will expire
        self._join_senders(time.monotonic() + 2.0)
        # Taken ahead of need and never claimed: back to the queue (else the reaper's rescue).
        self.health.attempt(self.store.untake, self._ready.drain())
        self._done.set()
        for thread in [*self._services, listener]:
            thread.join(timeout=2.0)
        self.callbacks.join(timeout=2.0)

    def force(self) -> None:
        """Cut the grace period short (a second Ctrl-C)."""
        self._forced.set()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _join_senders(self, deadline: float) -> None:
        """Wait for the threads to end; meanwhile unblock again any that began to wait for
        work just after the last unblocking (they would otherwise sit out their wait)."""
        while alive := [sender for sender in self.senders if sender.alive]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            alive[0].join(min(0.05, remaining))
            if any(not sender.busy for sender in alive):  # busy ones are handing back, not waiting
                self._wake_waiting()

    def _wake_waiting(self) -> None:
        """Unblock this worker's threads waiting for work, so stopping is quick."""
        self.store.unblock_waiting()

    def _on_cancel(self, uuid: str) -> None:
        """A pending request was canceled: interrupt it, if one of our threads holds it."""
        for sender in self.senders:
            if sender.in_flight.interrupt(Interrupt.CANCELED, uuid=uuid):
                return

    def _keep_due(self) -> None:
        """Queue scheduled requests, and those waiting to be retried, when they are due."""
        while not self._stopping.is_set():
            try:
                self.store.keep_due(self._stopping, self.health.failed)
            except Exception:  # e.g. a read-only replica after a failover: log, keep going
                log.exception("Unexpected error in the scheduler; going on")
                self._stopping.wait(1.0)

    def _every(self, period: float, task: Callable[[], None]) -> None:
        while not self._done.wait(period):
            try:
                task()
            except Exception:  # e.g. a read-only replica after a failover: log, keep going
                log.exception("Unexpected error in %s; going on", threading.current_thread().name)

    def _heartbeat(self) -> None:
        """Renew the leases of every held request and callback, in one round trip; notice the
        ones no longer held."""
        held = [(sender, claim) for sender in self.senders if (claim := sender.in_flight.claim)]
        jobs = self.callbacks.held()
        if not held and not jobs:
            return
        claims = [claim for _, claim in held]
        renewed = self.health.attempt(self.store.renew_all, claims, jobs, self.config.lease)
        if renewed is None:
            return
        for (sender, claim), ok in zip(held, renewed[0], strict=True):
            if not ok:
                self._not_held(sender, claim)
        for job, ok in zip(jobs, renewed[1], strict=True):
            if not ok:
                self.callbacks.not_held(job)

    def _not_held(self, sender: Sender, claim: Claim) -> None:
        # A cancel whose pub/sub message was missed looks like this too; it gets the DELETE.
        status = self.health.attempt(self.store.status, claim.uuid)
        reason = Interrupt.CANCELED if status is Status.CANCELED else Interrupt.TAKEN_BACK
        sender.in_flight.interrupt(reason, uuid=claim.uuid, token=claim.token)

    def _learn_servers(self) -> None:
        """Where htq's servers listen now: the guard refuses to send there (a loop)."""
        servers = self.health.attempt(self.store.servers)
        if servers is not None:
            self.outbound.learn_servers(servers)

    def _reap(self) -> None:
        """Each period, one worker of all re-queues the requests whose worker went away."""
        if not self.health.attempt(self.store.try_lead_reaper, self.id, REAP_PERIOD):
            return
        outcome = self.health.attempt(self.store.reap, self.config.max_attempts)
        self.health.attempt(self.store.reap_callbacks)  # lost ones, and waits for busy hosts
        if outcome and (outcome["requeued"] or outcome["lost"]):
            log.info(
                "Requeued %d request(s) whose worker was lost; gave up on %d",
                outcome["requeued"],
                outcome["lost"],
            )

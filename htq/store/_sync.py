"""The blocking runner of the store's operations, for the worker's threads and for tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import redis

from htq.config import StoreConfig
from htq.models import RequestSpec, Status, now_ms
from htq.store._keys import text
from htq.store._ops import Operations, together
from htq.store._scripts import missing
from htq.store._values import (
    Answer,
    CallbackJob,
    Claim,
    Enqueued,
    Idempotency,
    Operation,
    Requeued,
    Turn,
)
from htq.store._wire import REDIS_DOWN, Wire, client, worker_client

T = TypeVar("T")

#: Seconds a scheduler sleeps at most (no due time, or a far one) before it looks again:
#: what a missed pub/sub message (Redis away) costs at worst.
DUE_POLL = 5.0


SKEW_MS = 300_000  # clocks of servers and workers may disagree by this much (ms)


class Store:
    """Runs operations, blocking. Thread-safe: each thread has a wire of its own to Redis, on
    which an operation's commands go in one round trip; `redis` is for blocking and pub/sub."""

    def __init__(self, config: StoreConfig, *, redis_client: redis.Redis | None = None) -> None:
        self.ops = Operations(config)
        self.config = config
        self.keys = self.ops.keys
        # redis-py's annotations are loose (sync and async share them): Any here.
        self.redis: Any = redis_client or client(config)
        self._local = threading.local()
        self._wires: set[Wire] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            wires, self._wires = self._wires, set()
        for wire in wires:
            wire.close()
        self.redis.close()

    def close_thread_wire(self) -> None:
        """Close the calling thread's wire (a thread that ends)."""
        wire: Wire | None = getattr(self._local, "wire", None)
        if wire is not None:
            self._local.wire = None
            with self._lock:
                self._wires.discard(wire)
            wire.close()

    def run(self, operation: Operation[T]) -> T:
        """Send an operation's commands in one round trip and read its replies."""
        wire: Wire | None = getattr(self._local, "wire", None)
        if wire is None:
            wire = self._local.wire = Wire(self.redis.connection_pool)
            with self._lock:
                self._wires.add(wire)
        commands = operation.commands
        replies = wire.execute(commands)
        indexes, again = missing(commands, replies)
        if indexes:
            for n, reply in zip(indexes, wire.execute(again), strict=True):
                replies[n] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return operation.parse(replies)

    # -- the server's operations, blocking (tests and tools) ---------------------------------

    def enqueue(
        self, uuid: str, spec: RequestSpec, time_ms: int, idempotency: Idempotency | None = None
    ) -> Enqueued:
        return self.run(self.ops.enqueue(uuid, spec, time_ms, idempotency))

    def get(self, uuid: str) -> dict[str, Any] | None:
        return self.run(self.ops.get(uuid))

    def status(self, uuid: str) -> Status | None:
        return self.run(self.ops.status(uuid))

    def response(self, uuid: str) -> Answer:
        return self.run(self.ops.response(uuid))

    def cancel(self, uuid: str) -> Status | None:
        return self.run(self.ops.cancel(uuid))

    def stats(self) -> dict[str, Any]:
        return self.run(self.ops.stats())

    def requeue(self, uuid: str) -> Requeued:
        return self.run(self.ops.requeue(uuid))

    def attempts(self, uuid: str) -> list[dict[str, Any]] | None:
        return self.run(self.ops.attempts(uuid))

    # -- the worker's ------------------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> str | None:
        """Block until a uuid can be taken from the queue; it moves to `claiming` meanwhile."""
        keys = self.keys
        return text(self.redis.blmove(keys.queue, keys.claiming, timeout, "RIGHT", "LEFT")) or None

    def claim(self, uuid: str, worker: str, lease: float) -> Claim | None:
        return self.run(self.ops.claim(uuid, worker, lease))

    def renew(self, claims: Sequence[Claim], lease: float) -> list[bool]:
        return self.run(self.ops.renew(claims, lease))

    def complete(self, claim: Claim, response: dict[str, Any]) -> bool:
        return self.run(self.ops.complete(claim, response))

    def retry(self, claim: Claim, response: dict[str, Any], due: int) -> bool:
        return self.run(self.ops.retry(claim, response, due))

    def release(self, claim: Claim) -> bool:
        return self.run(self.ops.release(claim))

    def promote(self, now: int | None = None, limit: int = 1000) -> tuple[int, int | None]:
        """Queue what is due by `now`: how many, and when the next is due (None: nothing)."""
        return self.run(self.ops.promote(now or now_ms(), limit))

    def wait_for_callback(self, timeout: float) -> str | None:
        """Block until a finished request has a callback to send; it moves to `taking`
        meanwhile (lease it with `take_callback`; the reaper rescues it if the worker dies)."""
        keys = self.keys
        taken = self.redis.blmove(keys.callbacks, keys.callbacks_taking, timeout, "RIGHT", "LEFT")
        return text(taken) or None

    def take_callback(self, uuid: str, lease: float) -> CallbackJob | None:
        return self.run(self.ops.take_callback(uuid, lease))

    def renew_callbacks(self, jobs: Sequence[CallbackJob], lease: float) -> list[bool]:
        return self.run(self.ops.renew_callbacks(jobs, lease)) if jobs else []

    def renew_all(
        self, claims: Sequence[Claim], jobs: Sequence[CallbackJob], lease: float
    ) -> tuple[list[bool], list[bool]]:
        """`renew` and `renew_callbacks` in one round trip (a worker's heartbeat)."""
        ops = [self.ops.renew(claims, lease), self.ops.renew_callbacks(jobs, lease)]
        renewed, called = self.run(together(ops))
        return renewed, called

    def callback_response(self, job: CallbackJob) -> bytes | None:
        return self.run(self.ops.callback_response(job))

    def called_back(self, job: CallbackJob, result: dict[str, Any] | None) -> bool:
        return self.run(self.ops.called_back(job, result))

    def put_back_callback(self, job: CallbackJob, due: int | None = None) -> bool:
        return self.run(self.ops.put_back_callback(job, due))

    def reap_callbacks(self, limit: int = 100) -> tuple[int, int]:
        """Put back callbacks whose lease ran out, and those stuck in `taking` (two looks):
        how many of each."""
        return self.run(self.ops.reap_callbacks(now_ms(), limit))

    def untake(self, uuids: Sequence[str]) -> int:
        return self.run(self.ops.untake(uuids)) if uuids else 0

    def servers(self) -> list[dict[str, Any]]:
        """Where the live servers listen (see Operations.announce). An announcement counts
        for SKEW_MS more than its servers' clock said: a worker's clock ahead of theirs must
        not make it forget them."""
        return self.run(self.ops.servers(now_ms() - SKEW_MS))

    def try_lead_reaper(self, worker: str, period: float) -> bool:
        return self.run(self.ops.lead_reaper(worker, period))

    def purge(self, now: int | None = None, limit: int = 1000) -> int:
        return self.run(self.ops.purge(now or now_ms(), limit))

    def turn(
        self,
        *,
        result: tuple[Claim, dict[str, Any]] | None,
        claim: str | None,
        worker: str,
        lease: float,
        take: bool,
        retry_at: int | None = None,
    ) -> Turn:
        """A busy worker thread's one round trip a request: store the result of the request
        it sent (`complete`; with `retry_at`, a failed attempt to try again then: `retry`),
        claim the uuid it took on an earlier turn (`claim`), and take the next one from the
        queue (as `wait_for_work`, not blocking)."""
        ops = self.ops
        storing: Operation[bool] | None = None
        if result is not None:
            held, response = result
            storing = (
                ops.complete(held, response)
                if retry_at is None
                else ops.retry(held, response, retry_at)
            )
        wanted = [
            storing,
            ops.claim(claim, worker, lease) if claim is not None else None,
            ops.take() if take else None,
        ]
        results: list[Any] = self.run(together([op for op in wanted if op is not None]))
        done = iter(results)
        stored, claimed, taken = (next(done) if op is not None else None for op in wanted)
        return Turn(stored, claimed, taken)

    def reap(self, max_attempts: int, limit: int = 100) -> dict[str, int]:
        """Re-queue requests whose lease expired, rescue stuck claims, purge expired entries."""
        now = now_ms()
        outcome = {"requeued": 0, "lost": 0, "rescued": 0, "purged": 0}
        for uuid in self.run(self.ops.expired(now, limit)):
            result = self.run(self.ops.requeue_expired(uuid, now, max_attempts))
            if result in outcome:
                outcome[result] += 1
        outcome["rescued"] = self.run(self.ops.rescue_claiming())
        outcome["purged"] = self.purge(now, limit)
        return outcome

    def unblock_waiting(self) -> int:
        """Wake this store's connections blocked waiting for work (CLIENT UNBLOCK), so that a
        stopping worker is quick; how many were woken.

        Best effort: where CLIENT is not allowed, a waiting thread notices the stop when its
        wait times out. Needs the client name `worker_store` gives.
        """
        name = self.redis.connection_pool.connection_kwargs.get("client_name")
        if not name:
            return 0
        woken = 0
        with contextlib.suppress(redis.RedisError, *REDIS_DOWN):
            for connected in self.redis.client_list():
                if connected.get("name") == name and "b" in connected.get("flags", ""):
                    woken += int(self.redis.client_unblock(int(connected["id"])))
        return woken

    def keep_due(self, stop: threading.Event, on_error: Callable[[BaseException], None]) -> None:
        """Until `stop`: queue each scheduled request at its due time. Sleeps until the next
        due time, woken early when a sooner one is scheduled (pub/sub); any number of workers
        may run it, each request is queued once (PROMOTE is one atomic step)."""
        while not stop.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.due)
                while not stop.is_set():
                    moved, due = self.promote()
                    if moved >= 1000:
                        continue  # more are due already
                    wait = DUE_POLL if due is None else (due - now_ms()) / 1000
                    if wait > 0:
                        pubsub.get_message(timeout=min(wait, DUE_POLL))
            except REDIS_DOWN as exc:
                on_error(exc)
                stop.wait(1.0)
            finally:
                with contextlib.suppress(*REDIS_DOWN):
                    pubsub.close()

    def wake_schedulers(self) -> None:
        """Wake the threads sleeping in `keep_due` (a stopping worker's sees its stop)."""
        self.redis.publish(self.keys.due, "wake")

    @contextlib.contextmanager
    def cancellations(self, on_cancel: Callable[[str], None]) -> Iterator[threading.Thread]:
        """Call `on_cancel(uuid)` from a thread for each canceled pending request, until exit.

        Pub/sub may miss messages while Redis is away; lease renewal (`renew`) is the fallback.
        """
        stop = threading.Event()

        def listen() -> None:
            while not stop.is_set():
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                try:
                    pubsub.subscribe(self.keys.cancel_channel)
                    while not stop.is_set():
                        # A local wait on the socket; short, so a stopping worker is not kept.
                        message = pubsub.get_message(timeout=0.1)
                        if message and message["type"] == "message":
                            on_cancel(text(message["data"]))
                except REDIS_DOWN:
                    stop.wait(1.0)
                finally:
                    with contextlib.suppress(*REDIS_DOWN):
                        pubsub.close()

        thread = threading.Thread(target=listen, name="htq-cancel-listener", daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            stop.set()
            thread.join(timeout=2)


def worker_store(config: StoreConfig) -> Store:
    """A store whose client fails fast, for a worker (see `worker_client`)."""
    return Store(config, redis_client=worker_client(config))

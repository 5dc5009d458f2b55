"""The store as a state machine, on a real Redis: every transition in any interleaving, checked
against a model after every step.

Hypothesis drives the store's sync runner through enqueue (with and without an `id`, which
replaces the unfinished holder), take, claim, complete, renew, release, untake, cancel, delete
the response, the worker's one-round-trip `turn`, time passing past leases, and reaping (at a
given time, and `Store.reap` itself). After every step the whole namespace is read back from
Redis in one round trip and compared with the model: each request's hash, every index, the
queue and `claiming` lists (order included), leases, ids, expiry and counters. At the end of
each example every request is driven to its end by a worker that takes, claims and completes
what it finds, with time passed beyond every lease.

Invariants:
- one terminal outcome: a request's result is written at most once (a completion accepted, or
  the reaper giving up), and a finished request only ever changes to `canceled`;
- no response on a canceled request;
- nothing lost: every request is in exactly one status index (the one its hash names), in
  `index:all`, and a queued one is in `queue` or `claiming` (from where the reaper's rescue puts
  it back); a pending one has a lease, nothing else has; at the end every request is finished;
- no stale token accepted: a completion, renewal or hand-back whose fencing token is not the
  current one is refused (and a refused completion counted as `fenced`).

Leases and reaping use virtual time: a lease is `clock + k * 100` seconds long and the reaper
runs at `now + clock`, so a lease has expired exactly when its virtual deadline is at or before
the clock, whatever the real milliseconds (an example takes well under 100 s).

Each example has a key prefix of its own, deleted at its end; derandomized, so every run tries
the same interleavings. `MACHINE` bounds the run (300 examples of up to 50 steps, 12 to 17 s on
2 cores); the test prints what it did (run with -s), and docs/reliability.md keeps the counts.
"""

from __future__ import annotations

import collections
import functools
import json
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from htq.config import StoreConfig
from htq.models import Status, now_ms, validate_request
from htq.store import Claim, Store
from tests.support.store import answer, delete_namespace

URL = "http://127.0.0.1:9/"
WORKER = "machine"
MAX_ATTEMPTS = 3  # WorkerConfig.max_attempts' default
REQUESTS = 6  # at most this many requests an example: more steps for each one's life
STEP = 100  # seconds: leases and the clock move in these steps (an example lasts far less)
ANSWERED = (Status.SUCCESS, Status.ERROR, Status.TIMEOUT)
UNFINISHED = (Status.QUEUED, Status.PENDING)

MACHINE = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,  # the same interleavings every run: a failure is a bug, never bad luck
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


#: What the runs did, over every example: rules run, refusals seen, transitions made.
TALLY: collections.Counter[str] = collections.Counter()
F = TypeVar("F", bound=Callable[..., None])


def counted(rule: F) -> F:
    """Count the steps each rule makes (for the figures the test reports)."""

    @functools.wraps(rule)
    def run(*args: Any, **kwargs: Any) -> None:
        rule(*args, **kwargs)
        TALLY["steps"] += 1  # counted once done (a draw may end the example midway)
        TALLY[f"rule {rule.__name__}"] += 1

    return run  # type: ignore[return-value]


@dataclass
class Model:
    """What the store should hold for one request."""

    uuid: str
    id: str | None
    time: int
    status: Status = Status.QUEUED
    token: int = 0
    attempts: int = 0
    response: bool = False  # a stored response
    summary: bool = False  # a listing's summary of it
    deleted: bool = False  # the summary says the response was deleted
    replaced_by: str | None = None
    lease: int | None = None  # virtual deadline (seconds) while pending
    results: int = 0  # results written: completions accepted, or the reaper giving up
    finished: list[Status] = field(default_factory=list)  # every terminal status it took


def text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class StoreMachine(RuleBasedStateMachine):
    """The store against its model; one fresh namespace per example."""

    redis_url = ""  # set by the test before it runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.store = Store(StoreConfig(self.redis_url, prefix=f"m{uuidlib.uuid4().hex[:12]}"))
        self.requests: dict[str, Model] = {}
        self.queue: list[str] = []  # left (LPUSH) to right (taken next)
        self.claiming: list[str] = []
        self.seen: set[str] = set()  # the rescue's last look at `claiming`
        self.hand: list[str] = []  # uuids a worker took and has not claimed yet
        self.claims: list[Claim] = []  # every claim handed out, current or stale
        self.ids: dict[str, str] = {}
        self.clock = 0  # virtual seconds added to the reaper's now
        self.counters = {"fenced": 0, "requeued": 0, "lost": 0}
        self.created = 0
        TALLY["examples"] += 1

    def new_uuid(self) -> str:
        """Uuids in the order they are made (random ones would order ties in Redis's sorted
        sets differently from run to run, and a failure would not replay)."""
        self.created += 1
        return f"00000000-0000-4000-8000-{self.created:012x}"

    def holder(self) -> str:
        """A new claimer each time, as every sender thread of every worker is: a claim of a
        request its holder already holds would be a resend, recognised (test_transitions)."""
        self.created += 1
        return f"{WORKER}/{self.created}"

    def teardown(self) -> None:
        try:
            if self.requests:
                self.drain()
        finally:
            delete_namespace(self.store)
            self.store.close()

    # -- the model's transitions (the scripts' logic, restated) --------------------------------

    def finish(self, request: Model, status: Status) -> None:
        request.status = status
        request.lease = None
        request.finished.append(status)
        if request.id is not None and self.ids.get(request.id) == request.uuid:
            del self.ids[request.id]

    def model_cancel(self, request: Model) -> Status:
        before = request.status
        TALLY[f"cancels of {before} requests"] += 1
        if before is Status.CANCELED:
            return before
        if before is Status.PENDING:
            self.finish(request, Status.CANCELED)
            request.token += 1
        else:
            request.response = request.summary = request.deleted = False
            self.finish(request, Status.CANCELED)
        return before

    def some_claim(self) -> st.SearchStrategy[Claim]:
        """Any claim handed out; as often, one of a request pending now (current or stale), and
        as often a stale one of a request pending again: where fencing matters."""
        pending = [c for c in self.claims if self.requests[c.uuid].status is Status.PENDING]
        stale = [c for c in pending if not self.held(c)]
        choices = [st.sampled_from(claims) for claims in (self.claims, pending, stale) if claims]
        return st.one_of(*choices)

    def held(self, claim: Claim) -> bool:
        request = self.requests[claim.uuid]
        return request.status is Status.PENDING and str(request.token) == claim.token

    def model_complete(self, claim: Claim, status: Status) -> bool:
        request = self.requests[claim.uuid]
        if request.status is status and str(request.token) == claim.token:
            # The same result sent again (its answer was lost): recognised, nothing changes.
            TALLY["results sent again, recognised"] += 1
            return True
        if not self.held(claim):
            self.counters["fenced"] += 1
            TALLY["stale results refused"] += 1
            if self.requests[claim.uuid].status is Status.PENDING:
                TALLY["stale results refused, request held by a newer claim"] += 1
            return False
        TALLY["results stored"] += 1
        request = self.requests[claim.uuid]
        request.response = request.summary = True
        request.deleted = False
        request.results += 1
        self.finish(request, status)
        return True

    def model_claim(self, uuid: str, lease: int) -> Model | None:
        if uuid in self.claiming:
            self.claiming.remove(uuid)  # LREM 1: the first from the left
        request = self.requests[uuid]
        if request.status is not Status.QUEUED:
            TALLY["claims refused (not queued)"] += 1
            return None
        TALLY["claims"] += 1
        request.status = Status.PENDING
        request.token += 1
        request.attempts += 1
        request.lease = self.clock + lease
        return request

    def model_take(self) -> str | None:
        if not self.queue:
            return None
        uuid = self.queue.pop()
        self.claiming.insert(0, uuid)
        return uuid

    def model_rescue(self) -> int:
        before, self.seen = self.seen, set()
        rescued = 0
        for uuid in list(self.claiming):
            if uuid in before:
                self.claiming.remove(uuid)
                self.queue.append(uuid)
                rescued += 1
                TALLY["stuck claims rescued"] += 1
            else:
                self.seen.add(uuid)
        return rescued

    def lease_for(self, steps: int) -> int:
        """A lease `steps` STEPs past the clock, in the seconds `claim` and `renew` take."""
        return self.clock + steps * STEP

    # -- rules ------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert self.store.cancel("ffffffff-ffff-4fff-bfff-ffffffffffff") is None, "unknown"

    @precondition(lambda self: len(self.requests) < REQUESTS)
    @rule(
        ident=st.sampled_from([None, None, "a", "b"]),
        skew=st.integers(min_value=-3000, max_value=3000),
    )
    @counted
    def enqueue(self, ident: str | None, skew: int) -> None:
        uuid = self.new_uuid()
        time_ms = now_ms() + skew  # servers' clocks differ
        spec = validate_request({"url": URL} if ident is None else {"url": URL, "id": ident})
        replaced = None
        kept_time = time_ms
        if ident is not None and (current := self.ids.get(ident)) is not None:
            held = self.requests[current]
            assert held.status in UNFINISHED
            self.model_cancel(held)
            held.replaced_by = uuid
            replaced = current
            TALLY["replaced by id"] += 1
            kept_time = max(time_ms, held.time)
        if ident is not None:
            self.ids[ident] = uuid
        self.requests[uuid] = Model(uuid, ident, kept_time)
        TALLY["requests"] += 1
        self.queue.insert(0, uuid)
        enqueued = self.store.enqueue(uuid, spec, time_ms)
        assert (enqueued.uuid, enqueued.replaced) == (uuid, replaced)

    @precondition(lambda self: self.queue)
    @rule()
    @counted
    def take(self) -> None:
        expected = self.model_take()
        assert self.store.run(self.store.ops.take()) == expected
        if expected is not None:
            self.hand.append(expected)

    @rule(steps=st.integers(min_value=1, max_value=3))
    @counted
    def take_and_claim(self, steps: int) -> None:
        """An idle thread: take the next uuid and claim it."""
        uuid = self.model_take()
        assert self.store.run(self.store.ops.take()) == uuid
        if uuid is not None:
            lease = self.lease_for(steps)
            expected = self.model_claim(uuid, lease - self.clock)
            self.check_claim(uuid, self.store.claim(uuid, self.holder(), lease), expected)

    @precondition(lambda self: self.hand)
    @rule(data=st.data(), steps=st.integers(min_value=1, max_value=3))
    @counted
    def claim(self, data: st.DataObject, steps: int) -> None:
        uuid = self.hand.pop(data.draw(st.integers(0, len(self.hand) - 1), label="hand"))
        lease = self.lease_for(steps)
        expected = self.model_claim(uuid, lease - self.clock)
        claim = self.store.claim(uuid, self.holder(), lease)
        self.check_claim(uuid, claim, expected)

    def check_claim(self, uuid: str, claim: Claim | None, expected: Model | None) -> None:
        if expected is None:
            assert claim is None, f"{uuid} claimed while {self.requests[uuid].status}"
            return
        assert claim is not None
        assert (claim.uuid, claim.token, claim.attempts) == (
            uuid, str(expected.token), expected.attempts
        )  # fmt: skip
        assert claim.spec.url == URL and claim.spec.id == expected.id
        self.claims.append(claim)

    @precondition(lambda self: self.claims)
    @rule(data=st.data(), status=st.sampled_from(ANSWERED))
    @counted
    def complete(self, data: st.DataObject, status: Status) -> None:
        claim = data.draw(self.some_claim(), label="claim")
        expected = self.model_complete(claim, status)
        assert self.store.complete(claim, answer(claim.uuid, status)) is expected

    @precondition(lambda self: self.claims)
    @rule(data=st.data(), steps=st.integers(min_value=1, max_value=3))
    @counted
    def renew(self, data: st.DataObject, steps: int) -> None:
        claims = data.draw(st.lists(self.some_claim(), min_size=1, max_size=4), label="claims")
        lease = self.lease_for(steps)
        expected = [self.held(claim) for claim in claims]
        TALLY["stale renewals refused"] += expected.count(False)
        for claim, held in zip(claims, expected, strict=True):
            if held:
                self.requests[claim.uuid].lease = lease
        assert self.store.renew(claims, lease) == expected

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    @counted
    def release(self, data: st.DataObject) -> None:
        claim = data.draw(self.some_claim(), label="claim")
        expected = self.held(claim)
        TALLY["stale hand-backs refused"] += not expected
        if expected:
            request = self.requests[claim.uuid]
            request.status = Status.QUEUED
            request.token += 1
            request.attempts -= 1
            request.lease = None
            self.queue.append(claim.uuid)
        assert self.store.release(claim) is expected

    @precondition(lambda self: self.hand)
    @rule(data=st.data())
    @counted
    def untake(self, data: st.DataObject) -> None:
        picked = data.draw(
            st.lists(st.integers(0, len(self.hand) - 1), min_size=1, max_size=3, unique=True)
        )
        uuids = [self.hand[n] for n in picked]
        self.hand = [uuid for n, uuid in enumerate(self.hand) if n not in picked]
        returned = 0
        for uuid in reversed(uuids):  # the script's order (see Operations.untake)
            if uuid in self.claiming:
                self.claiming.remove(uuid)
                self.queue.append(uuid)
                returned += 1
        assert self.store.untake(uuids) == returned

    @precondition(lambda self: self.hand)
    @rule(data=st.data())
    @counted
    def forget_taken(self, data: st.DataObject) -> None:
        """A worker dies between taking a uuid and claiming it: it stays in `claiming`."""
        self.hand.pop(data.draw(st.integers(0, len(self.hand) - 1), label="hand"))

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    @counted
    def cancel(self, data: st.DataObject) -> None:
        uuid = data.draw(st.sampled_from(list(self.requests)), label="uuid")
        expected = self.model_cancel(self.requests[uuid])
        assert self.store.cancel(uuid) is expected

    @precondition(lambda self: any(r.response for r in self.requests.values()))
    @rule(data=st.data())
    @counted
    def delete_response(self, data: st.DataObject) -> None:
        answered = [uuid for uuid, r in self.requests.items() if r.response]
        uuid = data.draw(st.sampled_from(answered), label="uuid")
        request = self.requests[uuid]
        expected = request.response
        if expected:
            request.response = False
            request.deleted = request.summary
        assert self.store.run(self.store.ops.delete_response(uuid)) is expected

    @rule(
        data=st.data(),
        status=st.sampled_from(ANSWERED),
        take=st.booleans(),
        steps=st.integers(min_value=1, max_value=3),
    )
    @counted
    def turn(self, data: st.DataObject, status: Status, take: bool, steps: int) -> None:
        """A busy thread's round trip: store a result, claim what it took, take the next."""
        result = data.draw(st.none() | self.some_claim(), label="result") if self.claims else None
        uuid = None
        if len(self.hand) > 0 and data.draw(st.booleans(), label="claim one"):
            uuid = self.hand.pop(data.draw(st.integers(0, len(self.hand) - 1), label="hand"))
        lease = self.lease_for(steps)
        stored = self.model_complete(result, status) if result is not None else None
        expected = self.model_claim(uuid, lease - self.clock) if uuid is not None else None
        taken = self.model_take() if take else None
        turn = self.store.turn(
            result=(result, answer(result.uuid, status)) if result is not None else None,
            claim=uuid,
            worker=self.holder(),
            lease=lease,
            take=take,
        )
        assert turn.stored is stored and turn.taken == taken
        if uuid is not None:
            self.check_claim(uuid, turn.claim, expected)
        else:
            assert turn.claim is None
        if taken is not None:
            self.hand.append(taken)

    @rule(steps=st.integers(min_value=0, max_value=3))
    @counted
    def reap(self, steps: int) -> None:
        """Time passes (leases may expire), and the reaper runs: what Store.reap does, at the
        virtual time."""
        self.clock += steps * STEP
        self.reap_at(self.clock)

    @precondition(lambda self: self.claiming or self.seen)
    @rule()
    @counted
    def reap_now(self) -> None:
        """Store.reap itself, at the real time: no lease has expired yet (each lasts at least
        STEP seconds), stuck claims are rescued, nothing is purged."""
        rescued = self.model_rescue()
        outcome = self.store.reap(MAX_ATTEMPTS)
        assert outcome == {"requeued": 0, "lost": 0, "rescued": rescued, "purged": 0}

    def reap_at(self, clock: int) -> None:
        now = now_ms() + clock * 1000
        ops = self.store.ops
        expired = self.store.run(ops.expired(now, 1000))
        expected = {u for u, r in self.requests.items() if r.lease is not None and r.lease <= clock}
        assert sorted(expired) == sorted(expected)
        # Store.reap takes them in the order of their deadlines; ties within a millisecond
        # would order them by chance, so here they go in the order they were made.
        for uuid in sorted(expired):
            request = self.requests[uuid]
            request.token += 1
            if request.attempts >= MAX_ATTEMPTS:
                request.response = request.summary = True
                request.deleted = False
                request.results += 1
                self.counters["lost"] += 1
                TALLY["leases expired, given up"] += 1
                self.finish(request, Status.ERROR)
                outcome = "lost"
            else:
                request.status = Status.QUEUED
                request.lease = None
                self.queue.append(uuid)
                self.counters["requeued"] += 1
                TALLY["leases expired, queued again"] += 1
                outcome = "requeued"
            assert self.store.run(ops.requeue_expired(uuid, now, MAX_ATTEMPTS)) == outcome
        rescued = self.model_rescue()
        assert self.store.run(ops.rescue_claiming()) == rescued
        assert self.store.purge(now) == 0, "nothing finished has outlived its ttl"

    # -- the end of each example: every request driven to its end -----------------------------

    def drain(self) -> None:
        """Workers that find whatever is left: time passes beyond every lease, the reaper runs
        (twice, for stuck claims), and everything queued is taken, claimed and answered."""
        for _ in range(3 * MAX_ATTEMPTS):
            if all(r.status not in UNFINISHED for r in self.requests.values()):
                break
            self.clock += 4 * STEP
            self.reap_at(self.clock)
            self.reap_at(self.clock)
            self.hand = []
            while (uuid := self.model_take()) is not None:
                assert self.store.run(self.store.ops.take()) == uuid
                expected = self.model_claim(uuid, STEP)
                claim = self.store.claim(uuid, self.holder(), self.lease_for(1))
                self.check_claim(uuid, claim, expected)
                if claim is not None:
                    assert self.model_complete(claim, Status.SUCCESS)
                    assert self.store.complete(claim, answer(uuid, Status.SUCCESS))
            self.check_store()
        for request in self.requests.values():
            assert request.status not in UNFINISHED, f"{request.uuid} never finished"
            first, *later = request.finished
            assert later in ([], [Status.CANCELED]), request.finished
            assert request.results == (first in ANSWERED), request
        self.check_store()

    # -- invariants: the whole namespace, read back in one round trip -------------------------

    @invariant()
    def store_matches_model(self) -> None:
        self.check_store()

    def check_store(self) -> None:
        keys = self.store.keys
        uuids = list(self.requests)
        pipe = self.store.redis.pipeline(transaction=False)
        for uuid in uuids:
            pipe.hgetall(keys.request(uuid))
            pipe.pttl(keys.request(uuid))
        pipe.lrange(keys.queue, 0, -1)
        pipe.lrange(keys.claiming, 0, -1)
        pipe.smembers(keys.claiming_seen)
        pipe.zrange(keys.leases, 0, -1)
        pipe.zrange(keys.expiry, 0, -1)
        pipe.zrange(keys.all, 0, -1)
        for status in Status:
            pipe.zrange(keys.index(status), 0, -1)
        pipe.hgetall(keys.ids)
        pipe.hgetall(keys.stats)
        replies = pipe.execute()
        hashes = dict(zip(uuids, replies[0 : 2 * len(uuids) : 2], strict=True))
        ttls = dict(zip(uuids, replies[1 : 2 * len(uuids) : 2], strict=True))
        rest = iter(replies[2 * len(uuids) :])
        queue, claiming, seen, leases, expiry, indexed_all = (next(rest) for _ in range(6))
        indexes = {status: {text(u) for u in next(rest)} for status in Status}
        ids, counters = next(rest), next(rest)

        assert [text(u) for u in queue] == self.queue
        assert [text(u) for u in claiming] == self.claiming
        assert {text(u) for u in seen} == self.seen
        assert {text(u) for u in indexed_all} == set(uuids), "every request is in index:all"
        for status in Status:
            members = {u for u, r in self.requests.items() if r.status is status}
            assert indexes[status] == members, f"index:{status}"
        pending = {u for u, r in self.requests.items() if r.status is Status.PENDING}
        assert {text(u) for u in leases} == pending, "leases are the pending requests'"
        finished = {u for u, r in self.requests.items() if r.status not in UNFINISHED}
        assert {text(u) for u in expiry} == finished
        assert {text(k): text(v) for k, v in ids.items()} == self.ids
        stored_counters = {text(k): int(v) for k, v in counters.items()}
        assert {k: stored_counters.get(k, 0) for k in self.counters} == self.counters

        for uuid, request in self.requests.items():
            stored: dict[str, str] = {k.decode(): v.decode() for k, v in hashes[uuid].items()}
            assert stored, f"{uuid} is gone"
            assert stored["status"] == request.status, (uuid, stored["status"], request)
            assert int(stored["token"]) == request.token, (uuid, request)
            assert int(stored["attempts"]) == request.attempts, (uuid, request)
            assert stored["id"] == (request.id or "")
            assert int(stored["time"]) == request.time
            assert stored.get("replaced_by") == request.replaced_by
            assert ("response" in stored) is request.response, (uuid, request)
            assert ("summary" in stored) is request.summary, (uuid, request)
            if request.summary:
                deleted = json.loads(stored["summary"]).get("deleted", False)
                assert deleted is request.deleted, (uuid, request)
            if request.status is Status.CANCELED:
                assert "response" not in stored, "no response on a canceled request"
            if request.status is Status.QUEUED:
                assert uuid in self.queue or uuid in self.claiming, f"{uuid} queued but lost"
            # A finished request expires with its ttl; an unfinished one is kept.
            assert (ttls[uuid] > 0) is (request.status not in UNFINISHED), (uuid, ttls[uuid])
            assert len(request.finished) <= 2 and request.results <= 1, request
            if len(request.finished) == 2:
                assert request.finished[1] is Status.CANCELED, request


def test_the_store_as_a_state_machine(
    redis_url: str, record_property: Callable[[str, object], None]
) -> None:
    StoreMachine.redis_url = redis_url
    TALLY.clear()
    run_state_machine_as_test(StoreMachine, settings=MACHINE)
    print(f"\nstore state machine: {dict(sorted(TALLY.items()))}")
    for name, count in sorted(TALLY.items()):
        record_property(name, count)
    assert TALLY["stale results refused, request held by a newer claim"] > 0
    assert TALLY["leases expired, queued again"] > 0 and TALLY["replaced by id"] > 0

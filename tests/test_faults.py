"""Faults caused for real, with real processes: `htq server` and `htq worker` processes, an
embedded Valkey, and HTTP targets, all on loopback; every process started here is stopped here,
by its PID.

- A worker `kill -9`ed five times (and restarted each time) while 2,000 requests go through
  three workers: nothing lost or stuck, and only what the dead worker held is sent twice.
- Valkey `kill -9`ed and restarted (append-only file on) while requests are being queued: no
  acknowledged request (303) is lost.
- 200 requests canceled while in flight: each target gets its DELETE, and the worker lets go of
  the request within a second of the `DELETE /<uuid>/`.

Each test prints its figures (run with `-s`) and records them as properties (`--junitxml`);
docs/reliability.md keeps those of a run. Slow: `make test-quick` skips them, `make test` runs
them.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from htq.config import StoreConfig
from htq.models import TERMINAL, Status
from htq.store import Store
from tests.support.processes import HtqProcess, start_server, start_worker
from tests.support.redis_server import ValkeyProcess
from tests.support.store import delete_namespace
from tests.support.target import Target

pytestmark = pytest.mark.slow

RecordProperty = Callable[[str, object], None]


def report(record_property: RecordProperty, name: str, figures: Mapping[str, object]) -> None:
    """Print the figures (seen with -s) and record them (junit XML properties)."""
    print(f"\n{name}: {json.dumps(figures)}")
    for key, value in figures.items():
        record_property(f"{name}.{key}", value)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value that `p`% of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def queue(api: httpx.Client, url: str) -> str | None:
    """POST a request to `url`; its uuid once acknowledged (303), None if refused."""
    try:
        answer = api.post("/", json={"url": url})
    except httpx.TransportError:
        return None
    if answer.status_code != 303:
        return None
    return str(answer.headers["Location"]).rstrip("/").rsplit("/", 1)[1]


def statuses(store: Store, uuids: Sequence[str]) -> dict[str, Status | None]:
    found: dict[str, Status | None] = {}
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        read: list[Status | None] = store.run(store.ops.statuses(chunk))
        found.update(zip(chunk, read, strict=True))
    return found


def settle(store: Store, uuids: Sequence[str], timeout: float) -> dict[str, Status | None]:
    """The requests' statuses once every one is finished, or when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        found = statuses(store, uuids)
        if all(s in TERMINAL for s in found.values()) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@contextlib.contextmanager
def processes() -> Iterator[list[HtqProcess]]:
    """The htq processes a test starts, each stopped (by PID) at its end, whatever happens."""
    started: list[HtqProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


# -- a worker killed five times ------------------------------------------------------------------

REQUESTS = 2000
WORKERS = 3
THREADS = 4
KILLS = 5
DELAY = 0.15  # the target's answer time: 12 threads send at most 80 a second, 25 s of load
LEASE = 3  # seconds: what a dead worker held goes back to the queue this long after it died


def held_by(store: Store, pid: int) -> dict[str, int]:
    """The pending requests a worker process holds (its id carries its PID), and their attempts."""
    keys = store.keys
    pending = [u.decode() for u in store.redis.zrange(keys.index(Status.PENDING), 0, -1)]
    pipe = store.redis.pipeline(transaction=False)
    for uuid in pending:
        pipe.hmget(keys.request(uuid), "worker", "attempts")
    held = {}
    for uuid, (worker, attempts) in zip(pending, pipe.execute(), strict=True):
        if worker is not None and worker.decode().split(":")[-2] == str(pid):
            held[uuid] = int(attempts)
    return held


def stopped(pid: int, timeout: float) -> bool:
    """Whether every thread of process `pid` is stopped (state T), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        if all(state in ("T", "t") for state in states):
            return True
        time.sleep(0.01)
    return False


def freeze_holding(worker: HtqProcess, store: Store, timeout: float = 30) -> set[str]:
    """Stop (SIGSTOP) the worker at a moment it holds requests, each on its first attempt; what
    it holds. With at most one death per request, none can reach `max_attempts` (3) deliveries
    whose workers died, which would end it as an error by design rather than lose it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.signal(signal.SIGSTOP)
        assert stopped(worker.pid, timeout=10), "SIGSTOP did not stop the worker"
        # What it wrote to Valkey before it stopped was in Valkey's sockets before this PING:
        # by the answer to the second, Valkey's event loop has run it.
        store.redis.ping()
        store.redis.ping()
        held = held_by(store, worker.pid)
        if held and all(attempts == 1 for attempts in held.values()):
            return set(held)
        worker.signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(
        "the worker held no request on its first attempt: the load ran out (or a worker's id "
        "no longer reads host:pid:token, see htq/worker/_worker.py)"
    )


def test_a_worker_killed_five_times_loses_nothing(
    store: Store, store_config: StoreConfig, target: Target, record_property: RecordProperty
) -> None:
    redis, prefix = store_config.redis_url, store_config.prefix
    worker_options = ["--lease", str(LEASE)]
    began = time.monotonic()
    with processes() as started:
        started.append(server := start_server(redis, prefix))
        for _ in range(WORKERS):
            started.append(start_worker(redis, prefix, *worker_options, threads=THREADS))
        victim = started[1]
        paths = [f"/delay/{DELAY:g}/{n}" for n in range(REQUESTS)]
        with httpx.Client(base_url=str(server.url), timeout=30) as api:
            acknowledged = [queue(api, f"{target.url}{path}") for path in paths]
        queued_in = time.monotonic() - began
        uuids = [uuid for uuid in acknowledged if uuid is not None]
        assert len(uuids) == REQUESTS, "every request is queued"

        orphans: set[str] = set()  # what the killed worker held when it died
        for _ in range(KILLS):
            orphans |= freeze_holding(victim, store)
            victim.kill()  # SIGKILL, by PID
            started.append(victim := start_worker(redis, prefix, *worker_options, threads=THREADS))
        killed_by = time.monotonic() - began
        left_at_last_kill = store.stats()["queue_depth"]
        found = settle(store, uuids, timeout=60)
        stats = store.stats()

    sent = collections.Counter(r.path for r in target.requests if r.method == "GET")
    uuid_of = dict(zip(paths, uuids, strict=True))
    twice = {uuid_of[path] for path, count in sent.items() if count > 1}
    lost = [u for u in uuids if found[u] is not Status.SUCCESS]  # gone, or ended without answer
    never_sent = [path for path in paths if sent[path] == 0]
    stuck = [u for u in uuids if found[u] not in TERMINAL]
    report(
        record_property,
        "worker_kill_9",
        {
            "requests": REQUESTS,
            "workers": WORKERS,
            "threads_each": THREADS,
            "kills": KILLS,
            "held_by_the_killed_worker": len(orphans),
            "lost": len(lost),
            "never_sent": len(never_sent),
            "stuck": len(stuck),
            "sent_twice": len(twice),
            "most_sends_of_one_request": max(sent.values()),
            "requeued_by_the_reaper": stats["requeued"],
            "given_up_as_lost": stats["lost"],
            "all_queued_after_s": round(queued_in, 1),
            "kills_done_after_s": round(killed_by, 1),
            "queued_after_the_last_kill": left_at_last_kill,
            "all_done_after_s": round(time.monotonic() - began, 1),
        },
    )
    assert (lost, never_sent, stuck) == ([], [], [])
    # At least once, and more only for what a worker held when it died: at most its threads'
    # requests at each kill, each sent again once.
    assert twice <= orphans and len(orphans) <= KILLS * THREADS
    assert max(sent.values()) <= 2
    # Taken back from dead workers only, never from a live one (their leases were renewed).
    assert stats["requeued"] == len(orphans) and stats["lost"] == 0


# -- Valkey killed mid-load ----------------------------------------------------------------------

ACKNOWLEDGED = 1000
KILL_AFTER = 400  # acknowledged requests before Valkey is killed
OUTAGE = 1.0  # seconds Valkey stays dead (the server answers 503 meanwhile)


def test_valkey_killed_mid_load_loses_no_acknowledged_request(
    store_config: StoreConfig, target: Target, record_property: RecordProperty
) -> None:
    # Its own Valkey, to kill. appendfsync always: Valkey writes each change to its append-only
    # file before it answers, so what it acknowledged survives its death; what is measured is
    # whether htq acknowledges (303) only what Valkey has (see docs/reliability.md).
    valkey = ValkeyProcess(appendfsync="always").start()
    config = replace(store_config, redis_url=valkey.url)
    store = Store(config)
    acknowledged: dict[str, str] = {}  # path -> uuid
    refused: list[str] = []
    missing_at_restart: list[str] = []
    began = time.monotonic()
    try:
        with processes() as started:
            started.append(server := start_server(valkey.url, config.prefix))
            for _ in range(2):
                started.append(start_worker(valkey.url, config.prefix, "--lease", "3", threads=4))
            killed_at = restarted_at = 0.0
            with httpx.Client(base_url=str(server.url), timeout=30) as api:
                n = 0
                while len(acknowledged) < ACKNOWLEDGED:
                    path = f"/status/200/{n}"
                    n += 1
                    if (uuid := queue(api, f"{target.url}{path}")) is not None:
                        acknowledged[path] = uuid
                    else:
                        refused.append(path)
                    if not killed_at and len(acknowledged) == KILL_AFTER:
                        valkey.kill()  # SIGKILL, by PID
                        killed_at = time.monotonic()
                    elif killed_at and not restarted_at and time.monotonic() - killed_at > OUTAGE:
                        valkey.start()  # the same port and data: it replays its file
                        restarted_at = time.monotonic()
                        uuids = list(acknowledged.values())
                        missing_at_restart = [u for u, s in statuses(store, uuids).items() if not s]
            uuids = list(acknowledged.values())
            found = settle(store, uuids, timeout=60)
            stats = store.stats()
    finally:
        delete_namespace(store)
        store.close()
        valkey.close()

    sent = collections.Counter(r.path for r in target.requests if r.method == "GET")
    lost = [u for u in uuids if found[u] is None]
    stuck = [u for u in uuids if found[u] not in TERMINAL]
    report(
        record_property,
        "valkey_kill_9",
        {
            "acknowledged": len(acknowledged),
            "acknowledged_before_the_kill": KILL_AFTER,
            "refused_while_down": len(refused),
            "down_s": round(restarted_at - killed_at, 2),
            "acknowledged_lost": len(lost),
            "acknowledged_missing_right_after_restart": len(missing_at_restart),
            "stuck": len(stuck),
            "not_success": sum(found[u] is not Status.SUCCESS for u in uuids),
            "sent_twice": sum(count > 1 for count in sent.values()),
            "refused_but_sent": sum(sent[path] > 0 for path in refused),
            "requeued_by_the_reaper": stats["requeued"],
            "all_done_after_s": round(time.monotonic() - began, 1),
        },
    )
    assert refused, "Valkey was down while requests came"
    assert missing_at_restart == [] and lost == [] and stuck == []
    assert all(found[u] is Status.SUCCESS for u in uuids)
    assert all(sent[path] >= 1 for path in acknowledged)


# -- 200 in-flight cancels -----------------------------------------------------------------------

CANCELS = 200
AT_ONCE = 50  # requests in flight at once: 2 workers of 25 threads


def test_200_in_flight_cancels_are_interrupted_and_deleted(
    store: Store, store_config: StoreConfig, target: Target, record_property: RecordProperty
) -> None:
    redis, prefix = store_config.redis_url, store_config.prefix
    canceled_at: dict[str, float] = {}  # path -> monotonic time of its DELETE /<uuid>/
    uuids: list[str] = []
    with processes() as started:
        started.append(server := start_server(redis, prefix))
        for _ in range(2):
            started.append(start_worker(redis, prefix, threads=AT_ONCE // 2))
        with httpx.Client(base_url=str(server.url), timeout=30) as api:
            for start in range(0, CANCELS, AT_ONCE):
                paths = [f"/delay/30/{n}" for n in range(start, start + AT_ONCE)]
                batch = [queue(api, f"{target.url}{path}") for path in paths]
                for path in paths:  # all in flight: the target has them, and is not answering
                    assert target.wait_for_request(path, 20) is not None, path
                for path, uuid in zip(paths, batch, strict=True):
                    assert uuid is not None
                    canceled_at[path] = time.monotonic()
                    assert api.delete(f"/{uuid}/").status_code == 204
                    uuids.append(uuid)
                for path in paths:
                    assert target.wait_for_disconnect(10, path) is not None, path
                    assert target.wait_for_delete(path, 10) is not None, path
        found = statuses(store, uuids)
        answers = [store.response(uuid).raw for uuid in uuids]

    left = {path: t for path, t in target.disconnects}  # the worker let go (the socket closed)
    deleted = collections.Counter(r.path for r in target.deletes)
    interrupt = [left[path] - t for path, t in canceled_at.items()]
    delete = [
        next(r.time for r in target.deletes if r.path == path) - t
        for path, t in canceled_at.items()
    ]
    figures = {
        "canceled_in_flight": len(canceled_at),
        "in_flight_at_once": AT_ONCE,
        "deletes_received": sum(deleted[path] > 0 for path in canceled_at),
        "deletes_received_twice": sum(deleted[path] > 1 for path in canceled_at),
        "interrupt_p50_ms": round(percentile(interrupt, 50) * 1000, 1),
        "interrupt_p99_ms": round(percentile(interrupt, 99) * 1000, 1),
        "interrupt_max_ms": round(max(interrupt) * 1000, 1),
        "delete_received_p99_ms": round(percentile(delete, 99) * 1000, 1),
    }
    report(record_property, "cancel_in_flight", figures)
    assert all(status is Status.CANCELED for status in found.values())
    assert answers == [None] * CANCELS, "no response on a canceled request"
    assert figures["deletes_received"] == CANCELS and figures["deletes_received_twice"] == 0
    assert percentile(interrupt, 99) < 1.0, "the design's bound: within a second"

"""Scheduled requests: sent on time, and a backlog of them costs the immediate ones nothing.

On time: one `htq worker --threads 10`, and N requests due over `schedule_seconds` (evenly
spaced), all queued ahead of the first due time (bench/fill.py: the enqueue script, with a due
time each). Each names itself in its URL (`?id=`), so the target stamps its arrival: lateness
= arrival - due time (wall clocks of two processes on one machine; due times are whole ms).
An early one (negative lateness) is counted, and must not be; the target's count of requests
shows none was sent twice. The baseline is the same worker's plain dispatch, measured first:
N immediate requests enqueued one by one at the same rate (the store's enqueue, as the
server's), each from the moment its enqueue was sent to its arrival at the target.

Backlog: one namespace holds M requests due 30 to 330 days ahead (pipelined fill), a second
is emptied before each of its runs. In alternating rounds (each round's order swapped, so a
machine that drifts shifts both alike): N pre-queued immediate requests through a new
`htq worker --threads 10` in each (the rate from first claim to last finish, as in the
dispatch scenario), then POST / runs at 50 connections against each namespace's server.
Rates are the medians of the rounds; the ratios say what the backlog costs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.fill import fill, same_shape
from bench.harness import Api, cpu_seconds
from bench.load import Load, LoadResult
from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, median_run, wait_until
from bench.scenarios.dispatch import THREADS, done_count, timings
from bench.scenarios.scale import short
from bench.stats import summarize
from htq.models import new_uuid, now_ms, validate_request
from htq.store import Store

SCENARIO = "schedule"
PREFIX = "bench-schedule"
BACKLOG = "bench-schedule-backlog"
EMPTY = "bench-schedule-empty"
LATE_GOAL = Goal("value", "<=", 100.0)  # ms after the due time (p99)
EARLY_GOAL = Goal("value", "<=", 0)  # requests sent before their due time
RATE_GOAL = Goal("ratio", ">=", 0.9)
WARM_UP = 20  # unmeasured plain requests before the plain ones
OVERTAKEN = 0.05  # seconds: a request arriving this much after one due later was overtaken
DAY_MS = 86_400_000
AHEAD_DAYS = (30, 330)  # the backlog's due times, evenly spread between these days ahead


def run(ctx: Context) -> Outcome:
    on_time = _on_time(ctx)
    ctx.services.flush()
    backlog = _backlog(ctx)
    ctx.services.flush()
    return Outcome(_metrics(on_time, backlog), {"on_time": on_time, "backlog": backlog})


# -- on time ---------------------------------------------------------------------------------


def _on_time(ctx: Context) -> dict[str, Any]:
    n, span = ctx.sizes.scheduled, ctx.sizes.schedule_seconds
    target = ctx.services.target_url
    with (
        ctx.services.worker(PREFIX, threads=THREADS) as worker,
        ctx.services.store(PREFIX) as store,
        httpx.Client(timeout=30) as client,
    ):
        _plain(store, ctx.fast_url, "schedwarm", WARM_UP, n / span)
        _arrivals(client, target, [f"schedwarm{i}" for i in range(WARM_UP)], time.time())
        count_before = _log(client, target)["count"]
        usage = _Usage(ctx, worker.pid)
        sent = _plain(store, ctx.fast_url, "plain", n, n / span)
        plain = _arrivals(client, target, list(sent), time.time())
        plain_usage = usage.per(n)
        due, ahead = _schedule(ctx, store, n, span)
        usage = _Usage(ctx, worker.pid)  # from the last one queued: the fill is not counted
        scheduled = _arrivals(client, target, list(due), max(due.values()) / 1000)
        scheduled_usage = usage.per(n)
        # Every request of both runs is counted once it arrives, a second sending as well.
        arrived = _log(client, target)["count"] - count_before
    late = {name: scheduled[name] - at / 1000 for name, at in due.items()}
    return {
        "requests": n,
        "seconds": span,
        "plain_ms": summarize([plain[name] - at for name, at in sent.items()]),
        "late_ms": summarize(list(late.values())),
        "late_by_second_ms": _by_second(due, late),
        "early": sum(seconds < 0 for seconds in late.values()),
        "overtaken": _overtaken(due, scheduled, OVERTAKEN),
        "sent_twice_or_more": arrived - 2 * n,
        "queued_ahead_s": ahead,
        "plain_usage": plain_usage,
        "scheduled_usage": scheduled_usage,
    }


class _Usage:
    """The worker's and Valkey's CPU time and Redis's commands, from now."""

    def __init__(self, ctx: Context, worker: int) -> None:
        self.ctx, self.worker = ctx, worker
        self.calls = ctx.command_calls()
        self.cpu = self._cpu()

    def _cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.worker), cpu_seconds(self.ctx.services.valkey.pid)

    def per(self, n: int) -> dict[str, Any]:
        """Per request since then: worker and Valkey CPU (ms), Redis commands."""
        worker, valkey = (
            round((after - before) * 1000 / n, 3)
            for after, before in zip(self._cpu(), self.cpu, strict=True)
        )
        calls = self.ctx.calls_per(self.calls, n)
        return {"worker_cpu_ms": worker, "valkey_cpu_ms": valkey, "redis_calls": calls}


def _overtaken(due: dict[str, int], arrived: dict[str, float], by: float) -> int:
    """How many requests arrived more than `by` seconds after one due later than them."""
    by_due: dict[int, list[float]] = {}
    for name, at in due.items():
        by_due.setdefault(at, []).append(arrived[name])
    count, first_later = 0, float("inf")  # the earliest arrival of those due later
    for at in sorted(by_due, reverse=True):
        count += sum(when - first_later > by for when in by_due[at])
        first_later = min(first_later, *by_due[at])
    return count


def _by_second(due: dict[str, int], late: dict[str, float]) -> list[dict[str, float]]:
    """Lateness of the requests due in each second of the span (a backlog shows here)."""
    first = min(due.values())
    seconds: dict[int, list[float]] = {}
    for name, at in due.items():
        seconds.setdefault((at - first) // 1000, []).append(late[name])
    return [
        {"second": second, **{k: v for k, v in summarize(values).items() if k != "mean"}}
        for second, values in sorted(seconds.items())
    ]


def _plain(store: Store, url: str, tag: str, n: int, rate: float) -> dict[str, float]:
    """Enqueue `n` immediate requests, `rate` a second; when each enqueue was sent, by name."""
    sent: dict[str, float] = {}
    started = time.monotonic()
    for i in range(n):
        pause = started + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        name = f"{tag}{i}"
        spec = validate_request({"url": f"{url}?id={name}"})
        at = time.time()
        store.enqueue(new_uuid(), spec, int(at * 1000))
        sent[name] = at
    return sent


def _schedule(ctx: Context, store: Store, n: int, span: float) -> tuple[dict[str, int], float]:
    """Fill `n` requests due over `span` seconds from a little ahead: the due time of each, by
    name, and how many seconds ahead of the first due time the last was queued."""
    lead_ms = 250 + n // 5  # enough to fill them all before the first is due (5 a ms)
    first = now_ms() + lead_ms

    def due(i: int) -> int:
        return first + round(i * span * 1000 / n)

    uuids, _ = fill(ctx.services.store_config(PREFIX), n, due=due, tag="sched", url=ctx.fast_url)
    # Before any is sent (its hash then has more fields): the real enqueue's shape.
    if not same_shape(store, uuids[0], url=ctx.fast_url, not_before=now_ms() + DAY_MS):
        raise RuntimeError("filled requests differ from what Store.enqueue writes")
    ahead = (first - now_ms()) / 1000
    if ahead <= 0:
        raise RuntimeError(f"filling {n:,} scheduled requests took longer than {lead_ms} ms")
    return {f"sched{i}": due(i) for i in range(n)}, ahead


def _log(client: httpx.Client, target: str) -> dict[str, Any]:
    log: dict[str, Any] = client.get(f"{target}/_log").json()
    return log


def _arrivals(
    client: httpx.Client, target: str, names: list[str], last: float, timeout: float = 30.0
) -> dict[str, float]:
    """When the target saw each of `names`, waiting for them from `last` (the wall-clock time
    the last may arrive, slept through first: the target's log is not read while it works)."""
    time.sleep(max(0.0, last - time.time()))
    deadline = time.monotonic() + timeout
    while True:
        seen = _log(client, target)["arrival"]
        missing = [name for name in names if name not in seen]
        if not missing:
            return {name: seen[name] for name in names}
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(missing)} of {len(names)} never reached the target")
        time.sleep(0.1)


# -- the backlog -----------------------------------------------------------------------------


def _backlog(ctx: Context) -> dict[str, Any]:
    with (
        ctx.services.server(BACKLOG) as backlog,
        ctx.services.server(EMPTY) as empty,
        httpx.Client(timeout=30) as client,
    ):
        apis = {"backlog": (backlog, BACKLOG), "empty": (empty, EMPTY)}
        for api, _ in apis.values():
            ctx.load(_post(ctx, api, ctx.sizes.warmup_seconds))
        ctx.services.drop(BACKLOG)
        ctx.services.drop(EMPTY)
        filled = _fill_backlog(ctx)
        n = ctx.sizes.dispatch_requests
        # Unmeasured: each namespace's first worker (and its first requests) is slower. A run
        # of one round (smoke) only shows it works.
        if ctx.sizes.backlog_rounds > 1:
            for api, prefix in apis.values():
                _dispatch(ctx, client, api, prefix, min(n, 1000))
        ctx.services.drop(EMPTY)
        dispatched: dict[str, list[float]] = {"backlog": [], "empty": []}
        for order in _orders(ctx.sizes.backlog_rounds):
            for name in order:
                api, prefix = apis[name]
                dispatched[name].append(_dispatch(ctx, client, api, prefix, n))
            ctx.services.drop(EMPTY)
        # After the dispatch rounds: each POST / leaves a request in the queue.
        posted: dict[str, list[LoadResult]] = {"backlog": [], "empty": []}
        seconds = ctx.sizes.scale_load_seconds
        for order in _orders(ctx.sizes.backlog_rounds):
            ctx.services.drop(EMPTY)
            for name in order:
                posted[name].append(ctx.load(_post(ctx, apis[name][0], seconds)))
        scheduled_at_end = _scheduled(ctx, BACKLOG)
    return {
        **filled,
        "scheduled_at_end": scheduled_at_end,
        "dispatch_requests": n,
        "dispatch_rps": statistics.median(dispatched["backlog"]),
        "dispatch_empty_rps": statistics.median(dispatched["empty"]),
        "dispatch_rounds_rps": dispatched,
        "enqueue": median_run(posted["backlog"]).to_json(),
        "enqueue_empty": median_run(posted["empty"]).to_json(),
    }


def _orders(rounds: int) -> Iterator[tuple[str, str]]:
    """Which namespace goes first in each round: each in turn."""
    for number in range(rounds):
        yield ("empty", "backlog") if number % 2 == 0 else ("backlog", "empty")


def _post(ctx: Context, api: Api, seconds: float) -> Load:
    return Load(api.url, "POST", ctx.enqueue_body(), ctx.sizes.connections, seconds)


def _fill_backlog(ctx: Context) -> dict[str, Any]:
    """Schedule the backlog months ahead: how many, how fast, and Redis memory per request."""
    count = ctx.sizes.scheduled_backlog
    print(f"  scheduling {count:,} requests months ahead...", flush=True)
    ctx.services.settle()
    memory_before = ctx.used_memory()
    low, high = (now_ms() + days * DAY_MS for days in AHEAD_DAYS)

    def due(i: int) -> int:
        return low + (high - low) * i // count

    config = ctx.services.store_config(BACKLOG)
    uuids, seconds = fill(config, count, due=due, url=ctx.fast_url)
    with ctx.services.store(BACKLOG) as store:
        if not same_shape(store, uuids[0], url=ctx.fast_url, not_before=due(0)):
            raise RuntimeError("filled requests differ from what Store.enqueue writes")
    ctx.services.settle()
    return {
        "scheduled": _scheduled(ctx, BACKLOG),
        "fill_seconds": seconds,
        "memory_bytes": (ctx.used_memory() - memory_before) / count,
    }


def _scheduled(ctx: Context, prefix: str) -> int:
    with ctx.services.store(prefix) as store:
        return int(store.redis.zcard(store.keys.due))


def _dispatch(ctx: Context, client: httpx.Client, api: Api, prefix: str, n: int) -> float:
    """Queue `n` immediate requests, send them with a new worker: its rate, first claim to
    last finish."""
    ctx.services.settle()
    uuids, _ = fill(ctx.services.store_config(prefix), n, url=ctx.fast_url)
    before = done_count(api.stats(client))
    with ctx.services.worker(prefix, threads=THREADS):
        wait_until(
            lambda: done_count(api.stats(client)) >= before + n, 30 + n / 20, f"{n} dispatched"
        )
    with ctx.services.store(prefix) as store:
        span, _ = timings(store, uuids)
    return n / span


def _metrics(on_time: dict[str, Any], backlog: dict[str, Any]) -> list[Metric]:
    late, plain = on_time["late_ms"], on_time["plain_ms"]
    n, span, m = on_time["requests"], on_time["seconds"], short(backlog["scheduled"])
    baseline = "plain dispatch, same worker"
    alongside = "empty queue, alongside"
    return [
        Metric("schedule.late_p50", SCENARIO, f"{n:,} due over {span:g} s: due -> target p50",
               late["p50"], "ms", plain["p50"], baseline),
        Metric("schedule.late_p99", SCENARIO, f"{n:,} due over {span:g} s: due -> target p99",
               late["p99"], "ms", plain["p99"], baseline, LATE_GOAL),
        Metric("schedule.late_max", SCENARIO, f"{n:,} due over {span:g} s: due -> target max",
               late["max"], "ms", plain["max"], baseline),
        Metric("schedule.early", SCENARIO, "scheduled requests sent before their due time",
               on_time["early"], "req", goal=EARLY_GOAL),
        Metric("schedule.enqueue", SCENARIO, f"POST / rate, {m} scheduled waiting",
               backlog["enqueue"]["rps"], "req/s", backlog["enqueue_empty"]["rps"], alongside,
               RATE_GOAL),
        Metric("schedule.dispatch", SCENARIO,
               f"requests sent, worker --threads {THREADS}, {m} scheduled waiting",
               backlog["dispatch_rps"], "req/s", backlog["dispatch_empty_rps"], alongside,
               RATE_GOAL),
        Metric("schedule.fill", SCENARIO, f"time to schedule {m} requests (pipelined fill)",
               backlog["fill_seconds"], "s"),
        Metric("schedule.memory", SCENARIO, "Redis memory per scheduled request",
               backlog["memory_bytes"], "B"),
    ]  # fmt: skip

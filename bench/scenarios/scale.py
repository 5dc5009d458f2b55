"""Enqueue rate and `GET /?limit=100` time with 100k and 1M queued, against an empty queue.

Two `htq server`s share the Valkey: one whose namespace is filled to each level (fast,
pipelined, exactly what enqueue writes; see bench/fill.py), and one whose namespace is
emptied before each of its runs. Their runs alternate: POST / at 50 connections, then part
of the listing samples (the first page, one request at a time; each load has queued more
than a page). A machine that drifts by 10% in a minute (a shared one does) then shifts both
alike, and the ratio shows the queue's own effect. Each rate is the median of the runs.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.fill import fill, same_shape
from bench.harness import Api
from bench.load import Load, LoadResult
from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, median_run
from bench.stats import summarize

SCENARIO = "scale"
PREFIX = "bench-scale"
EMPTY = "bench-scale-empty"
RATE_GOAL = Goal("ratio", ">=", 0.9)
LISTING_GOAL = Goal("ratio", "<=", 1.1)


def run(ctx: Context) -> Outcome:
    with (
        ctx.services.server(PREFIX) as queue,
        ctx.services.server(EMPTY) as empty,
        httpx.Client(timeout=30) as client,
    ):
        for api in (queue, empty):
            ctx.load(_post(ctx, api, ctx.sizes.warmup_seconds))
        ctx.services.drop(PREFIX)
        levels = [_level(ctx, client, queue, empty, level) for level in ctx.sizes.scale_levels]
    ctx.services.flush()
    return Outcome(_metrics(levels), {"levels": levels})


def _post(ctx: Context, api: Api, seconds: float) -> Load:
    return Load(api.url, "POST", ctx.enqueue_body(), ctx.sizes.connections, seconds)


def _level(
    ctx: Context, client: httpx.Client, queue: Api, empty: Api, level: int
) -> dict[str, Any]:
    filled = _fill(ctx, client, queue, level)
    repeats = ctx.sizes.scale_repeats
    samples = max(1, ctx.sizes.listing_samples // repeats)
    runs: dict[str, list[LoadResult]] = {"queue": [], "empty": []}
    listing: dict[str, list[float]] = {"queue": [], "empty": []}
    for _ in range(repeats):
        ctx.services.drop(EMPTY)
        for name, api in (("empty", empty), ("queue", queue)):
            runs[name].append(ctx.load(_post(ctx, api, ctx.sizes.scale_load_seconds)))
            listing[name] += _listing(client, api.url, samples)
    return {
        "level": level,
        **filled,
        "queued_at_end": _queued(client, queue.url),
        "enqueue": median_run(runs["queue"]).to_json(),
        "enqueue_empty": median_run(runs["empty"]).to_json(),
        "listing_ms": summarize(listing["queue"]),
        "listing_empty_ms": summarize(listing["empty"]),
    }


def _fill(ctx: Context, client: httpx.Client, queue: Api, level: int) -> dict[str, Any]:
    """Fill the queue up to `level`; how many, how fast, and Redis memory per request."""
    queued = _queued(client, queue.url)
    if level <= queued:
        return {"queued_before": queued, "filled": 0, "fill_seconds": 0.0, "memory_bytes": None}
    print(f"  filling the queue to {level:,} requests...", flush=True)
    memory_before = ctx.used_memory()
    uuids, seconds = fill(ctx.services.store_config(PREFIX), level - queued, url=ctx.fast_url)
    with ctx.services.store(PREFIX) as store:
        if not same_shape(store, uuids[0], url=ctx.fast_url):
            raise RuntimeError("filled requests differ from what Store.enqueue writes")
    ctx.services.settle()
    return {
        "queued_before": _queued(client, queue.url),
        "filled": len(uuids),
        "fill_seconds": seconds,
        "memory_bytes": (ctx.used_memory() - memory_before) / len(uuids),
    }


def _queued(client: httpx.Client, url: str) -> int:
    queued: int = client.get(url + "stats").json()["queue_depth"]
    return queued


def _listing(client: httpx.Client, url: str, samples: int) -> list[float]:
    """Seconds each of `samples` GET /?limit=100 took, one at a time."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = client.get(url, params={"limit": 100})
        times.append(time.perf_counter() - started)
        if answer.status_code != 200 or len(answer.json()) != 100:
            raise RuntimeError(f"GET /?limit=100 answered {answer.status_code}, not a full page")
    return times


def _metrics(levels: list[dict[str, Any]]) -> list[Metric]:
    metrics = []
    alongside = "empty queue, alongside"
    for level in levels:
        n = short(level["level"])
        metrics += [
            Metric(f"scale.rps.{level['level']}", SCENARIO, f"POST / rate, {n} queued",
                   level["enqueue"]["rps"], "req/s", level["enqueue_empty"]["rps"], alongside,
                   RATE_GOAL),
            Metric(f"scale.listing.{level['level']}", SCENARIO, f"GET /?limit=100 p50, {n} queued",
                   level["listing_ms"]["p50"], "ms", level["listing_empty_ms"]["p50"], alongside,
                   LISTING_GOAL),
        ]  # fmt: skip
    filled = sum(level["filled"] for level in levels)
    if filled:
        seconds = sum(level["fill_seconds"] for level in levels)
        metrics.append(
            Metric("scale.fill", SCENARIO, f"time to queue {filled:,} requests (pipelined fill)",
                   seconds, "s")
        )  # fmt: skip
    memory = levels[-1]["memory_bytes"]
    if memory:
        metrics.append(
            Metric("scale.memory", SCENARIO, "Redis memory per queued request", memory, "B")
        )  # fmt: skip
    return metrics


def short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)

"""N pre-queued requests through `htq worker --threads 10`, against 10 bare httpx threads.

The worker's rate runs from its first claim to its last completion (the `claimed` and
`finished` times it stores), so its start-up is left out, as the ceiling's client set-up is.
After an unmeasured warm-up of each, every round runs the ceiling, then the worker; a machine
that drifts by 10% in a minute shifts both alike, and each rate is the median of the rounds.
Also: Redis memory per finished request, and Redis commands per request (first round).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

import httpx

from bench.fill import fill
from bench.harness import Api
from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, wait_until
from bench.stats import summarize
from htq.store import Store

SCENARIO = "dispatch"
PREFIX = "bench-dispatch"
THREADS = 10
GOAL = Goal("ratio", ">=", 0.8)


def run(ctx: Context) -> Outcome:
    n = ctx.sizes.dispatch_requests
    ceilings: list[dict[str, float]] = []
    rounds: list[dict[str, Any]] = []
    with ctx.services.server(PREFIX) as api, httpx.Client(timeout=10) as client:
        warm_up = min(n, 1000)  # unmeasured: the first run of each is slower
        ceiling(ctx.fast_url, warm_up)
        _dispatch(ctx, api, client, warm_up, first=False)
        ctx.services.drop(PREFIX)
        for number in range(ctx.sizes.dispatch_rounds):
            ceilings.append(ceiling(ctx.fast_url, n))
            rounds.append(_dispatch(ctx, api, client, n, first=number == 0))
            print(f"  round {number + 1}: {rounds[-1]['rps']:,.0f} req/s, "
                  f"ceiling {ceilings[-1]['rps']:,.0f} req/s")  # fmt: skip
            ctx.services.drop(PREFIX)
    ctx.services.flush()
    rate = statistics.median(r["rps"] for r in rounds)
    bare = statistics.median(c["rps"] for c in ceilings)
    metrics = [
        Metric("dispatch.rps", SCENARIO, f"requests sent, worker --threads {THREADS}", rate,
               "req/s", bare, f"{THREADS} httpx threads", GOAL),
        Metric("dispatch.memory", SCENARIO, "Redis memory per finished request",
               rounds[0]["memory_per_request_bytes"], "B"),
    ]  # fmt: skip
    data = {
        "requests": n,
        "rps": rate,
        "ceiling_rps": bare,
        "rounds": rounds,
        "ceilings": ceilings,
        **{key: rounds[0][key] for key in ("memory_per_request_bytes", "redis_calls_per_request")},
        "counts": rounds[-1]["counts"],
    }
    return Outcome(metrics, data)


def _dispatch(
    ctx: Context, api: Api, client: httpx.Client, n: int, *, first: bool
) -> dict[str, Any]:
    """One round: fill the queue with `n` requests, run the worker until all are sent."""
    ctx.services.settle()
    memory_before = ctx.used_memory()
    uuids, _ = fill(ctx.services.store_config(PREFIX), n, url=ctx.fast_url)
    before = ctx.command_calls()
    with ctx.services.worker(PREFIX, threads=THREADS):
        wait_until(lambda: done_count(api.stats(client)) >= n, 30 + n / 20, f"{n} dispatched")
    calls = ctx.calls_per(before, n)
    stats = api.stats(client)
    result: dict[str, Any] = {"counts": stats["counts"], "redis_calls_per_request": calls}
    if first:
        ctx.services.settle()
        result["memory_per_request_bytes"] = (ctx.used_memory() - memory_before) / n
    with ctx.services.store(PREFIX) as store:
        span, service = timings(store, uuids)
    return {"seconds": span, "rps": n / span, "claim_to_finish_ms": service, **result}


def ceiling(url: str, n: int) -> dict[str, float]:
    """10 bare httpx threads send `n` GETs of `url` (a process of their own)."""
    args = [sys.executable, "-m", "bench.ceilings", "httpx", url, "--requests", str(n)]
    done = subprocess.run(
        [*args, "--threads", str(THREADS)], capture_output=True, text=True, timeout=60 + n / 20,
        check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def done_count(stats: dict[str, int | dict[str, int]]) -> int:
    """Requests done (success, error or timeout), from /stats."""
    counts = stats["counts"]
    assert isinstance(counts, dict)
    return sum(counts[status] for status in ("success", "error", "timeout"))


def timings(store: Store, uuids: list[str]) -> tuple[float, dict[str, float]]:
    """Seconds from the first claim to the last finish; each request's claim-to-finish."""
    pipe = store.redis.pipeline(transaction=False)
    for uuid in uuids:
        pipe.hmget(store.keys.request(uuid), ["claimed", "finished"])
    rows = [(int(c), int(f)) for c, f in pipe.execute()]
    first = min(claimed for claimed, _ in rows)
    last = max(finished for _, finished in rows)
    # ms resolution: a span of a few seconds is exact to well under 1%.
    span = max(last - first, 1) / 1000
    return span, summarize([(f - c) / 1000 for c, f in rows])

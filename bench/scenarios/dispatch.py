"""N pre-queued requests through `htq worker --threads 10`, against 10 bare httpx threads.

The worker's rate runs from its first claim to its last completion (the `claimed` and
`finished` times it stores), so its start-up is left out, as the ceiling's client set-up is.
Also: Redis memory per finished request, and Redis commands per request.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from bench.fill import fill
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
    ceiling = _ceiling(ctx.fast_url, n)
    with ctx.services.server(PREFIX) as api, httpx.Client(timeout=10) as client:
        memory_before = ctx.used_memory()
        uuids, _ = fill(ctx.services.store_config(PREFIX), n, url=ctx.fast_url)
        before = ctx.command_calls()
        with ctx.services.worker(PREFIX, threads=THREADS):
            wait_until(lambda: _done(api.stats(client)) >= n, 30 + n / 20, f"{n} dispatched")
        calls = ctx.calls_per(before, n)
        stats = api.stats(client)
        ctx.services.settle()
        memory = (ctx.used_memory() - memory_before) / n
        with ctx.services.store(PREFIX) as store:
            span, service = _timings(store, uuids)
    ctx.services.flush()
    rate = n / span
    metrics = [
        Metric("dispatch.rps", SCENARIO, f"requests sent, worker --threads {THREADS}", rate,
               "req/s", ceiling["rps"], f"{THREADS} httpx threads", GOAL),
        Metric("dispatch.memory", SCENARIO, "Redis memory per finished request", memory, "B"),
    ]  # fmt: skip
    data = {
        "requests": n,
        "seconds": span,
        "rps": rate,
        "ceiling": ceiling,
        "claim_to_finish_ms": service,
        "counts": stats["counts"],
        "memory_per_request_bytes": memory,
        "redis_calls_per_request": calls,
    }
    return Outcome(metrics, data)


def _ceiling(url: str, n: int) -> dict[str, float]:
    args = [sys.executable, "-m", "bench.ceilings", "httpx", url, "--requests", str(n)]
    done = subprocess.run(
        [*args, "--threads", str(THREADS)], capture_output=True, text=True, timeout=60 + n / 20,
        check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _done(stats: dict[str, int | dict[str, int]]) -> int:
    counts = stats["counts"]
    assert isinstance(counts, dict)
    return sum(counts[status] for status in ("success", "error", "timeout"))


def _timings(store: Store, uuids: list[str]) -> tuple[float, dict[str, float]]:
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

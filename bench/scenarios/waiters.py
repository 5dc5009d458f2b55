"""1,000 clients blocked on GET /<uuid>/response/ at one server process, and everyone else.

GET /<uuid>/status/ is loaded (a few connections) before the waiters come and while they
wait; then a worker starts, and the time until the last waiter has its answer is noted.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.fill import fill
from bench.load import LoadResult
from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, wait_until

SCENARIO = "waiters"
PREFIX = "bench-waiters"
GOAL = Goal("value", "<=", 50.0)


def run(ctx: Context) -> Outcome:
    n = ctx.sizes.waiters
    with (
        ctx.services.server(PREFIX) as api,
        httpx.Client(timeout=10) as client,
        tempfile.TemporaryDirectory(prefix="htq-bench-") as tmp,
    ):
        uuids, _ = fill(ctx.services.store_config(PREFIX), n, url=ctx.fast_url)
        listed = Path(tmp) / "uuids"
        listed.write_text("\n".join(uuids))
        status_url = f"{api.url}{uuids[0]}/status/"
        alone = _status_load(ctx, status_url)
        args = ["waiters", api.url, "--uuids", str(listed), "--timeout", str(60 + n / 20)]
        with ctx.services.running("bench.load", *args) as held:
            wait_until(lambda: api.stats(client)["waiters"] >= n, 30, f"{n} waiters")
            crowded = _status_load(ctx, status_url)
            started = time.time()
            with ctx.services.worker(PREFIX, threads=10):
                held.wait(60 + n / 20)
            answered = _last_json(held.lines)
    ctx.services.flush()
    drain = (answered["last"] or started) - started
    metrics = [
        Metric("waiters.p99", SCENARIO, f"GET /<uuid>/status/ p99, {n} waiters blocked",
               crowded.latency_ms["p99"], "ms", alone.latency_ms["p99"], "no waiters", GOAL),
        Metric("waiters.drain", SCENARIO, f"all {n} waiters answered, from worker start",
               drain, "s"),
    ]  # fmt: skip
    if answered["answered"] != n:
        print(f"  warning: only {answered['answered']} of {n} waiters were answered")
    data = {"alone": alone.to_json(), "crowded": crowded.to_json(), "answers": answered}
    return Outcome(metrics, data)


def _status_load(ctx: Context, url: str) -> LoadResult:
    return ctx.measure(
        url, connections=ctx.sizes.status_connections, seconds=ctx.sizes.waiter_load_seconds
    )


def _last_json(lines: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(lines[-1])
    return result

"""Celery beside htq, when Celery is installed: the same pre-queued requests, 10 threads each.

Celery (`--pool threads --concurrency 10`, Redis broker and result backend on databases 1
and 2 of the run's Valkey) sends the dispatch scenario's requests with a task that does what
an htq worker thread does (see bench/celery_app.py). As in `dispatch`, each round runs the
ceiling (10 bare httpx threads) and then Celery (five rounds in a full run, one in a quick
one), and the medians are kept. Celery's rate runs
from its first finished task to its last (its results keep only the time each finished).

The original htq (PyPI 0.1.0) is not run: it shares the import name `htq` with this project,
and it does not start on the Pythons this project supports (its pinned requests 2.4 imports
`collections.Mapping`, gone since Python 3.10).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import statistics
from typing import Any

import redis

from bench.harness import child
from bench.report import Metric
from bench.scenarios._context import Context, Outcome, wait_until
from bench.scenarios.dispatch import THREADS, ceiling

SCENARIO = "compare"
ORIGINAL = (
    "skipped: it shares the import name `htq` with this project, and does not start on "
    "Python 3.10+ (its pinned requests 2.4 imports collections.Mapping)"
)


def run(ctx: Context) -> Outcome:
    if importlib.util.find_spec("celery") is None:
        notes = {"htq 0.1.0": ORIGINAL, "celery": "skipped: not installed (the dev extra has it)"}
        for name, note in notes.items():
            print(f"  {name}: {note}")
        return Outcome(data={"skipped": notes})
    print(f"  htq 0.1.0: {ORIGINAL}")
    n = ctx.sizes.dispatch_requests
    base = ctx.services.valkey.url.rsplit("/", 1)[0]
    broker, backend = f"{base}/1", f"{base}/2"
    ceilings: list[dict[str, float]] = []
    rounds: list[dict[str, float]] = []
    for number in range(ctx.sizes.compare_rounds):
        ceilings.append(ceiling(ctx.fast_url, n))
        rounds.append(_celery_round(ctx, broker, backend, n))
        print(f"  round {number + 1}: Celery {rounds[-1]['rps']:,.0f} req/s, "
              f"ceiling {ceilings[-1]['rps']:,.0f} req/s")  # fmt: skip
    rate = statistics.median(r["rps"] for r in rounds)
    bare = statistics.median(c["rps"] for c in ceilings)
    metrics = [
        Metric("compare.celery", SCENARIO, f"Celery --pool threads --concurrency {THREADS}",
               rate, "req/s", bare, f"{THREADS} httpx threads"),
    ]  # fmt: skip
    data = {"requests": n, "htq 0.1.0": ORIGINAL, "celery": {"rounds": rounds, "rps": rate},
            "ceilings": ceilings, "ceiling_rps": bare}  # fmt: skip
    return Outcome(metrics, data)


def _celery_round(ctx: Context, broker: str, backend: str, n: int) -> dict[str, float]:
    """Queue `n` tasks, run a Celery worker until each has its result; the rate between."""
    from bench.celery_app import TASK, make_app  # Celery is optional: imported only here

    results = redis.Redis.from_url(backend)
    queue = redis.Redis.from_url(broker)
    try:
        for db in (queue, results):
            db.flushdb()
        app = make_app(broker, backend)
        ids = [app.send_task(TASK, (ctx.fast_url,)).id for _ in range(n)]
        ctx.services.settle()
        env = {"BENCH_CELERY_BROKER": broker, "BENCH_CELERY_BACKEND": backend}
        args = ["-A", "bench.celery_app", "worker", "--pool", "threads",
                "--concurrency", str(THREADS), "--loglevel", "WARNING",
                "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        worker = child("celery", *args, env=env)
        try:
            wait_until(lambda: results.dbsize() >= n, 60 + n / 20, f"{n} Celery results")
        finally:
            worker.stop()
        finished = sorted(_finished(results, ids))
        span = max((finished[-1] - finished[0]).total_seconds(), 1e-3)
        return {"seconds": span, "rps": (len(finished) - 1) / span}
    finally:
        for db in (queue, results):
            db.flushdb()
            db.close()


def _finished(results: redis.Redis, ids: list[str]) -> list[datetime.datetime]:
    """When each task finished, from the results Celery stored."""
    times: list[datetime.datetime] = []
    for start in range(0, len(ids), 1000):
        keys = [f"celery-task-meta-{task}" for task in ids[start : start + 1000]]
        for raw in results.mget(keys):
            if raw is None:
                raise RuntimeError("a Celery task has no result")
            meta: dict[str, Any] = json.loads(raw)
            if meta["status"] != "SUCCESS":
                raise RuntimeError(f"a Celery task failed: {meta.get('result')}")
            times.append(datetime.datetime.fromisoformat(meta["date_done"]))
    return times

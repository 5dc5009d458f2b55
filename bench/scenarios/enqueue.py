"""POST / at 50 connections: htq server (1 and 2 processes) against a bare Tornado handler,
and htq with a --token (every POST carrying it) against htq without.

With one process, after a warm-up of each, the ceiling's runs, htq's and htq-with-a-token's
alternate for `enqueue_rounds` rounds (a machine that drifts shifts them alike); the median
run of each is kept, and the JSON has every run's rate.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Api, connections_per_process, ready_port
from bench.load import Load, LoadResult
from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, median_run

SCENARIO = "enqueue"
GOAL = Goal("ratio", ">=", 0.75)
# Authentication (and the Host and Origin checks every call pays) may cost at most 3%.
TOKEN_GOAL = Goal("ratio", ">=", 0.97)
TOKEN = "bench-token-0123456789abcdef"


def run(ctx: Context) -> Outcome:
    body = ctx.enqueue_body()
    connections = ctx.sizes.connections
    htq: dict[int, LoadResult] = {}
    with (
        ctx.services.running("bench.ceilings", "tornado", "--port", "0") as bare,
        ctx.services.server("bench-enqueue-1") as api,
        ctx.services.server("bench-enqueue-token", token=TOKEN) as guarded,
    ):
        urls = {
            "ceiling": f"http://127.0.0.1:{ready_port(bare)}/",
            "htq": api.url,
            "token": guarded.url,
        }
        tokens = {"token": TOKEN}
        before = ctx.command_calls()
        runs: dict[str, list[LoadResult]] = {name: [] for name in urls}
        for name, url in urls.items():
            seconds = ctx.sizes.warmup_seconds
            ctx.load(Load(url, "POST", body, connections, seconds, tokens.get(name)))
        for _ in range(ctx.sizes.enqueue_rounds):
            for name, url in urls.items():
                seconds = ctx.sizes.load_seconds
                runs[name].append(
                    ctx.load(Load(url, "POST", body, connections, seconds, tokens.get(name)))
                )
        # The warm-up's requests are in the delta too; divide by all that were sent.
        sent = ctx.stats(api)["total"] + ctx.stats(guarded)["total"]
        calls = ctx.calls_per(before, sent)
    ctx.services.flush()
    ceiling, htq[1] = median_run(runs["ceiling"]), median_run(runs["htq"])
    with_token = median_run(runs["token"])
    with ctx.services.server("bench-enqueue-2", 2) as api:
        htq[2], split = _measure_split(ctx, api, body)
    ctx.services.flush()
    return Outcome(
        metrics=_metrics(ceiling, htq, connections, split, with_token),
        data={
            "ceiling": ceiling.to_json(),
            "with_token": with_token.to_json(),
            "processes": {str(n): result.to_json() for n, result in htq.items()},
            "connections_per_process": split,
            "redis_calls_per_request": calls,
        },
    )


def _measure_split(ctx: Context, api: Api, body: str) -> tuple[LoadResult, list[int]]:
    """Measure, and count each server process's connections halfway through the run.

    The processes share one listening socket: which of them accepts each keep-alive
    connection (for the whole run) is up to the kernel's wake-ups, so the split varies.
    """
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            ctx.measure, api.url, method="POST", body=body, connections=ctx.sizes.connections
        )
        time.sleep(ctx.sizes.warmup_seconds + 0.5 + ctx.sizes.load_seconds / 2)
        split = connections_per_process(api.children, api.port)
        return running.result(), split


def _metrics(
    ceiling: LoadResult,
    htq: dict[int, LoadResult],
    connections: int,
    split: list[int],
    with_token: LoadResult,
) -> list[Metric]:
    bare = "bare Tornado"
    shares = "/".join(map(str, split))
    one, two = htq[1], htq[2]
    return [
        Metric("enqueue.rps", SCENARIO, "POST / rate, --processes 1", one.rps, "req/s",
               ceiling.rps, bare, GOAL),
        Metric("enqueue.p50", SCENARIO, f"POST / p50 at {connections} connections",
               one.latency_ms["p50"], "ms", ceiling.latency_ms["p50"], bare),
        Metric("enqueue.p99", SCENARIO, f"POST / p99 at {connections} connections",
               one.latency_ms["p99"], "ms", ceiling.latency_ms["p99"], bare),
        Metric("enqueue.token", SCENARIO, "POST / rate with --token, --processes 1",
               with_token.rps, "req/s", one.rps, "htq without a token", TOKEN_GOAL),
        Metric("enqueue.rps2", SCENARIO, f"POST / rate, --processes 2 ({shares} conns)",
               two.rps, "req/s", ceiling.rps, bare),
        Metric("enqueue.p99_2", SCENARIO, "POST / p99, --processes 2",
               two.latency_ms["p99"], "ms", ceiling.latency_ms["p99"], bare),
    ]  # fmt: skip

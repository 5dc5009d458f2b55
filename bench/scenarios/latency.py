"""Under light load (one request at a time): enqueue to dispatch, and response wake-up.

- 303 -> target: from the client reading the 303 to the target reading the request (wall
  clocks of two processes on one machine). The worker is woken by the enqueue itself, so it
  can be under way before the 303 reaches the client: a few samples may be negative.
- wake-up: from the response's `time` (the worker stamps it on reading the target's answer,
  just before storing it; whole milliseconds, rounded down) to a blocked GET /<uuid>/response/
  returning to the client. Samples where the GET was not yet blocked are left out (counted).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, uuid_of
from bench.stats import summarize

SCENARIO = "latency"
PREFIX = "bench-latency"
HOLD = 0.02  # seconds the target holds a wake-up sample's answer, so the GET is blocked first


def run(ctx: Context) -> Outcome:
    samples = ctx.sizes.latency_samples
    with (
        ctx.services.server(PREFIX) as api,
        ctx.services.worker(PREFIX, threads=10),
        httpx.Client(base_url=api.url, timeout=30) as client,
    ):
        _dispatches(client, ctx.fast_url, 5, "warm")
        dispatch = _dispatches(client, ctx.fast_url, samples, "l")
        arrivals = client.get(f"{ctx.services.target_url}/_log").json()["arrival"]
        wake, unblocked = _wake_ups(client, ctx.fast_url, samples)
    ctx.services.flush()
    after_303 = [arrivals[name] - t for name, (_, t) in dispatch.items()]
    after_post = [arrivals[name] - t for name, (t, _) in dispatch.items()]
    to_target, from_post, woken = summarize(after_303), summarize(after_post), summarize(wake)
    limit_p50, limit_p99 = Goal("value", "<=", 2.0), Goal("value", "<=", 10.0)
    metrics = [
        Metric("latency.dispatch_p50", SCENARIO, "303 -> target p50", to_target["p50"], "ms",
               goal=limit_p50),
        Metric("latency.dispatch_p99", SCENARIO, "303 -> target p99", to_target["p99"], "ms"),
        Metric("latency.post_p50", SCENARIO, "POST sent -> target p50", from_post["p50"], "ms"),
        Metric("latency.wake_p50", SCENARIO, "response stored -> blocked GET returns p50",
               woken["p50"], "ms"),
        Metric("latency.wake_p99", SCENARIO, "response stored -> blocked GET returns p99",
               woken["p99"], "ms", goal=limit_p99),
    ]  # fmt: skip
    data: dict[str, Any] = {
        "after_303_ms": to_target,
        "after_post_ms": from_post,
        "negative_after_303": sum(d < 0 for d in after_303),
        "wake_up_ms": woken,
        "wake_up_not_blocked": unblocked,
    }
    return Outcome(metrics, data)


def _dispatches(
    client: httpx.Client, url: str, count: int, tag: str
) -> dict[str, tuple[float, float]]:
    """POST each, note when it was sent and when its 303 came back, wait for it to be done."""
    sent: dict[str, tuple[float, float]] = {}
    for i in range(count):
        name = f"{tag}{i}"
        posted = time.time()
        answer = client.post("", json={"url": f"{url}?id={name}"})
        sent[name] = (posted, time.time())
        client.get(f"{uuid_of(answer)}/response/").raise_for_status()
    return sent


def _wake_ups(client: httpx.Client, url: str, count: int) -> tuple[list[float], int]:
    woken: list[float] = []
    unblocked = 0
    for i in range(count):
        answer = client.post("", json={"url": f"{url}?id=w{i}&delay={HOLD}"})
        asked = time.time()
        response = client.get(f"{uuid_of(answer)}/response/")
        returned = time.time()
        stored = response.json()["time"] / 1000
        if stored < asked - 0.001:
            unblocked += 1
        else:
            woken.append(returned - stored)
    return woken, unblocked

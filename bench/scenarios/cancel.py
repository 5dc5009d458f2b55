"""DELETE of an in-flight request: how soon the target sees its connection closed.

Each sample queues a request the target holds for 30 s, waits until the target has it,
sends DELETE /<uuid>/ and asks the target when the connection closed (the target's asyncio
protocol notices the worker's shutdown at once), and when the courtesy DELETE arrived.
"""

from __future__ import annotations

import time

import httpx

from bench.report import Goal, Metric
from bench.scenarios._context import Context, Outcome, uuid_of
from bench.stats import summarize

SCENARIO = "cancel"
PREFIX = "bench-cancel"
HOLD = 30  # seconds the target would take to answer


def run(ctx: Context) -> Outcome:
    closed: list[float] = []
    deleted: list[float] = []
    target = ctx.services.target_url
    with (
        ctx.services.server(PREFIX) as api,
        ctx.services.worker(PREFIX, threads=10),
        httpx.Client(timeout=30) as client,
    ):
        for i in range(ctx.sizes.cancel_samples):
            name = f"c{i}"
            url = f"{target}/slow?id={name}&delay={HOLD}"
            uuid = uuid_of(client.post(api.url, json={"url": url, "timeout": 2 * HOLD}))
            _event(client, target, name, "arrival")
            started = time.time()
            client.delete(f"{api.url}{uuid}/").raise_for_status()
            closed.append(_event(client, target, name, "disconnect") - started)
            deleted.append(_event(client, target, name, "delete") - started)
    ctx.services.flush()
    to_close, to_delete = summarize(closed), summarize(deleted)
    metrics = [
        Metric("cancel.p50", SCENARIO, "DELETE -> target connection closed p50",
               to_close["p50"], "ms"),
        Metric("cancel.p99", SCENARIO, "DELETE -> target connection closed p99",
               to_close["p99"], "ms", goal=Goal("value", "<=", 100.0)),
        Metric("cancel.delete_p99", SCENARIO, "DELETE -> target gets its DELETE p99",
               to_delete["p99"], "ms"),
    ]  # fmt: skip
    return Outcome(metrics, {"closed_ms": to_close, "target_delete_ms": to_delete})


def _event(client: httpx.Client, target: str, name: str, event: str) -> float:
    """When the target saw `event` for `name` (waiting up to 10 s for it)."""
    answer = client.get(f"{target}/_wait", params={"id": name, "event": event, "timeout": 10})
    if answer.status_code != 200:
        raise RuntimeError(f"the target saw no {event} for {name} within 10 s")
    when: float = answer.json()["time"]
    return when

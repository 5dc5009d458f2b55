"""The scenarios, in the order a run takes them; each returns its figures and raw data."""

from __future__ import annotations

from collections.abc import Callable

from bench.scenarios import cancel, compare, dispatch, enqueue, latency, scale, schedule, waiters
from bench.scenarios._context import Context, Outcome

Scenario = Callable[[Context], Outcome]

SCENARIOS: dict[str, Scenario] = {
    "enqueue": enqueue.run,
    "dispatch": dispatch.run,
    "latency": latency.run,
    "cancel": cancel.run,
    "scale": scale.run,
    "waiters": waiters.run,
    "schedule": schedule.run,
    "compare": compare.run,
}

__all__ = ["SCENARIOS", "Context", "Outcome", "Scenario"]

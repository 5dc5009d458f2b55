"""How big and how long each scenario runs: `full` (make bench), `quick`, and `smoke` (the test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    name: str
    load_seconds: float  # each measured enqueue run (POST / at `connections`)
    enqueue_rounds: int  # ceiling then htq (one process), this many times; medians kept
    warmup_seconds: float  # an unmeasured run before each measured one
    dispatch_requests: int  # pre-queued requests the worker and the ceiling each send
    dispatch_rounds: int  # ceiling then worker, this many times; medians kept
    compare_rounds: int  # ceiling then Celery (when installed), this many times; medians kept
    latency_samples: int  # one at a time: 303 -> target, and response wake-ups
    cancel_samples: int  # one at a time: DELETE -> target sees its connection closed
    scale_levels: tuple[int, ...]  # requests queued (each level measured beside an empty queue)
    scale_load_seconds: float  # each enqueue run at a scale level
    scale_repeats: int  # enqueue runs at each level, and as many beside it; medians kept
    listing_samples: int  # GET /?limit=100, one at a time, at each level
    waiters: int  # clients blocked on /response/ at once
    waiter_load_seconds: float  # GET /<uuid>/status/ runs with and without the waiters
    scheduled: int  # requests due over `schedule_seconds`, queued ahead (and as many plain)
    schedule_seconds: float  # the span their due times cover (and the plain ones' pacing)
    scheduled_backlog: int  # requests due months ahead, beside which immediate ones are measured
    backlog_rounds: int  # rounds of dispatch and of POST / runs, beside it and an empty queue
    connections: int = 50  # enqueue load concurrency
    status_connections: int = 4  # the "other requests" load while waiters wait


FULL = Sizes(
    name="full",
    enqueue_rounds=5,
    load_seconds=10,
    warmup_seconds=3,
    dispatch_requests=5000,
    dispatch_rounds=5,
    compare_rounds=5,
    latency_samples=200,
    cancel_samples=50,
    scale_levels=(100_000, 1_000_000),
    scale_load_seconds=5,
    scale_repeats=5,
    listing_samples=200,
    waiters=1000,
    waiter_load_seconds=5,
    scheduled=10_000,
    schedule_seconds=10,
    scheduled_backlog=1_000_000,
    backlog_rounds=3,
)

QUICK = Sizes(
    name="quick",
    enqueue_rounds=2,
    load_seconds=2,
    warmup_seconds=1,
    dispatch_requests=1000,
    dispatch_rounds=2,
    compare_rounds=1,
    latency_samples=40,
    cancel_samples=10,
    scale_levels=(50_000,),
    scale_load_seconds=1,
    scale_repeats=3,
    listing_samples=50,
    waiters=1000,
    waiter_load_seconds=2,
    scheduled=2_000,
    schedule_seconds=2,
    scheduled_backlog=50_000,
    backlog_rounds=2,
)

SMOKE = Sizes(
    name="smoke",
    enqueue_rounds=1,
    load_seconds=1,
    warmup_seconds=0.3,
    dispatch_requests=100,
    dispatch_rounds=1,
    compare_rounds=1,
    latency_samples=5,
    cancel_samples=2,
    scale_levels=(5000,),
    scale_load_seconds=1,
    scale_repeats=1,
    listing_samples=5,
    waiters=50,
    waiter_load_seconds=1,
    scheduled=200,
    schedule_seconds=0.5,
    scheduled_backlog=5_000,
    backlog_rounds=1,
)

SIZES = {sizes.name: sizes for sizes in (FULL, QUICK, SMOKE)}

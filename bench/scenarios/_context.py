"""What every scenario gets (the services, the sizes, the load generator) and gives back."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.harness import Api, Services
from bench.load import Load, LoadResult, generate
from bench.report import Metric
from bench.sizes import Sizes


@dataclass
class Outcome:
    metrics: list[Metric] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    services: Services
    sizes: Sizes
    use_wrk: bool

    @property
    def fast_url(self) -> str:
        """The target's quickest answer: what every throughput scenario sends."""
        return f"{self.services.target_url}/fast"

    def enqueue_body(self) -> str:
        """The JSON every POST / of a load sends (the same for htq and its ceiling)."""
        return json.dumps({"url": self.fast_url})

    def measure(
        self, url: str, *, method: str = "GET", body: str | None = None, connections: int = 50,
        seconds: float | None = None,
    ) -> LoadResult:  # fmt: skip
        """An unmeasured warm-up, then the measured run (each in its own process)."""
        seconds = self.sizes.load_seconds if seconds is None else seconds
        self.load(Load(url, method, body, connections, self.sizes.warmup_seconds))
        return self.load(Load(url, method, body, connections, seconds))

    def load(self, load: Load) -> LoadResult:
        """One run, with Valkey settled first."""
        self.services.settle()
        result = generate(load, use_wrk=self.use_wrk)
        if result.errors:
            print(f"  warning: {result.errors} errors in {load.method} {load.url}")
        return result

    def stats(self, api: Api) -> dict[str, Any]:
        with httpx.Client(timeout=10) as client:
            return api.stats(client)

    # -- Redis figures -----------------------------------------------------------------------

    def used_memory(self) -> int:
        return int(self.services.info("memory")["used_memory"])

    def command_calls(self) -> Counter[str]:
        """Calls per Redis command so far (commands run by scripts included)."""
        stats = self.services.info("commandstats").items()
        return Counter({name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats})

    def calls_per(self, before: Counter[str], count: int) -> dict[str, float]:
        """Commands per request since `before`, the harness's own INFO calls left out."""
        after = self.command_calls()
        after.subtract(before)
        return {
            name: round(n / count, 2)
            for name, n in after.most_common()
            if n > 0 and name not in ("info", "config|resetstat")
        }


def median_run(runs: list[LoadResult]) -> LoadResult:
    """The run with the median rate, noting every run's rate."""
    ordered = sorted(runs, key=lambda run: run.rps)
    median = ordered[len(ordered) // 2]
    median.runs_rps = [run.rps for run in runs]
    return median


def uuid_of(answer: httpx.Response) -> str:
    """The request's uuid from a 303's Location."""
    if answer.status_code != 303:
        raise RuntimeError(f"POST / answered {answer.status_code}: {answer.text}")
    return urlsplit(answer.headers["Location"]).path.strip("/")


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)

"""`python -m bench`: start everything on loopback, run the scenarios, print and save the results.

Usage:
    python -m bench                  full sizes (make bench): bench/results/latest.json,
                                     docs/benchmarks.png and the results block of
                                     docs/benchmarks.md
    python -m bench --quick          small sizes, under a minute: bench/results/tmp/quick.*
    python -m bench --size smoke     the smallest sizes (tests/test_bench.py)
    python -m bench --only enqueue,scale --no-wrk     (results in bench/results/tmp/)
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import chart, report
from bench.harness import Services
from bench.load import wrk_available
from bench.report import Metric
from bench.scenarios import SCENARIOS, Context, Outcome
from bench.sizes import SIZES
from tests.support.processes import ROOT

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same as --size quick")
    parser.add_argument("--size", choices=sorted(SIZES), help="full (default), quick or smoke")
    parser.add_argument("--only", help=f"comma-separated scenarios of: {', '.join(SCENARIOS)}")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    parser.add_argument("--chart", type=Path, help="where to draw the chart")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)
    args.size = args.size or ("quick" if args.quick else "full")
    # Only a full run of every scenario replaces the committed results, chart and doc block.
    complete = args.size == "full" and args.only is None
    if args.out is None:
        args.out = RESULTS / "latest.json" if complete else RESULTS / "tmp" / f"{args.size}.json"
    if args.chart is None:
        args.chart = ROOT / "docs" / "benchmarks.png" if complete else args.out.with_suffix(".png")
    args.update_doc = complete
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl-C, so every process started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = SIZES[args.size]
    use_wrk = not args.no_wrk and wrk_available()
    began, started = time.monotonic(), datetime.now(UTC)
    results: dict[str, Any] = {}
    metrics: list[Metric] = []
    print(f"htq benchmarks, {sizes.name} sizes; load by {'wrk' if use_wrk else 'python-asyncio'}")
    with Services.start() as services:
        server = services.info("server")
        valkey = server.get("valkey_version") or server.get("redis_version", "?")
        machine = report.describe_machine(valkey, "wrk" if use_wrk else "python-asyncio")
        context = Context(services, sizes, use_wrk)
        for name in args.names:
            outcome, results[name] = _run(name, context)
            metrics += outcome.metrics
    payload = {
        "version": 1,
        "size": sizes.name,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - began, 1),
        "machine": machine,
        "summary": {v: sum(m.verdict == v for m in metrics) for v in ("PASS", "MISS")},
        "scenarios": results,
    }
    print("\n" + report.text_table(metrics))
    print(f"\n{report.machine_line(machine)}\n{payload['summary']}, {payload['seconds']:.0f} s")
    report.write_json(args.out, payload)
    print(f"results written to {args.out}")
    if not args.no_chart:
        print(chart.draw(payload, args.chart))
    if args.update_doc and report.update_doc(DOC, report.results_block(payload, metrics)):
        print(f"results block of {DOC} updated")
    return 1 if any(r["error"] for r in results.values()) else 0


def _run(name: str, context: Context) -> tuple[Outcome, dict[str, Any]]:
    """One scenario and its JSON; a failure is reported and recorded, and the run goes on."""
    print(f"\n== {name}", flush=True)
    began = time.monotonic()
    error = None
    try:
        outcome = SCENARIOS[name](context)
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
        outcome = Outcome()
        context.services.flush()
    seconds = time.monotonic() - began
    if outcome.metrics:
        print(report.text_table(outcome.metrics))
    print(f"   ({seconds:.1f} s)", flush=True)
    return outcome, {
        "seconds": round(seconds, 1),
        "error": error,
        "metrics": [m.to_json() for m in outcome.metrics],
        "data": outcome.data,
    }


if __name__ == "__main__":
    raise SystemExit(main())

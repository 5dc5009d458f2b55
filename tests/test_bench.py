"""The benchmark harness still runs end to end (smallest sizes); speed itself is never asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import ready_port
from tests.support.processes import ROOT, HtqProcess

EXPECTED = {
    "enqueue": {
        "enqueue.rps",
        "enqueue.p50",
        "enqueue.p99",
        "enqueue.token",
        "enqueue.rps2",
        "enqueue.p99_2",
    },
    "dispatch": {"dispatch.rps", "dispatch.memory"},
    "latency": {"latency.dispatch_p50", "latency.dispatch_p99", "latency.post_p50",
                "latency.wake_p50", "latency.wake_p99"},
    "cancel": {"cancel.p50", "cancel.p99", "cancel.delete_p99"},
    "scale": {"scale.rps.5000", "scale.listing.5000"},
    "waiters": {"waiters.p99", "waiters.drain"},
    "schedule": {"schedule.late_p50", "schedule.late_p99", "schedule.late_max", "schedule.early",
                 "schedule.enqueue", "schedule.dispatch", "schedule.fill", "schedule.memory"},
    "compare": {"compare.celery"},
}  # fmt: skip


@pytest.mark.timeout(100)
def test_a_smoke_run_measures_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    doc = ROOT / "docs" / "benchmarks.md"
    doc_before = doc.read_text() if doc.exists() else None
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "--size", "smoke", "--no-wrk", "--out", str(out),
         "--chart", str(tmp_path / "smoke.png")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = bench.communicate(timeout=90)
    finally:
        if bench.poll() is None:  # SIGTERM: the harness then stops everything it started
            bench.terminate()
            bench.communicate(timeout=30)
    assert bench.returncode == 0, output
    results = json.loads(out.read_text())
    assert results["size"] == "smoke"
    assert set(results["scenarios"]) == set(EXPECTED)
    for name, scenario in results["scenarios"].items():
        assert scenario["error"] is None, name
        metrics = {m["key"]: m for m in scenario["metrics"]}
        assert EXPECTED[name] <= set(metrics), name
        for metric in metrics.values():
            assert metric["value"] is not None and math.isfinite(metric["value"]), metric
            if metric["target"]:
                assert metric["result"] in ("PASS", "MISS"), metric
    assert results["scenarios"]["dispatch"]["data"]["counts"]["success"] == 100
    assert results["scenarios"]["waiters"]["data"]["answers"]["answered"] == 50
    on_time = results["scenarios"]["schedule"]["data"]["on_time"]
    assert (on_time["early"], on_time["sent_twice_or_more"]) == (0, 0)
    assert (doc.read_text() if doc.exists() else None) == doc_before  # full runs only
    assert (tmp_path / "smoke.png").exists() or "chart skipped" in output


def test_a_helper_port_is_read_once_its_line_is_whole() -> None:
    helper = HtqProcess(["4321"], "ready", module="tests.support.slow_ready")
    try:
        assert ready_port(helper) == "4321"
    finally:
        helper.stop()


def test_a_helper_that_does_not_start_says_so() -> None:
    # "Address already in use" has "ready" in it: the start is fooled, not ready_port.
    helper = HtqProcess(["fail"], "ready", module="tests.support.slow_ready")
    try:
        with pytest.raises(RuntimeError, match="did not announce `ready <port>`"):
            ready_port(helper, timeout=2)
    finally:
        helper.stop()

"""The results as one PNG (throughput, latency, scale); needs matplotlib (the `bench` extra).

Usage:
    python -m bench.chart bench/results/latest.json docs/benchmarks.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FLOOR = 0.1  # ms: the latency panel's log scale starts here


def draw(payload: dict[str, Any], path: Path) -> str:
    """Draw the chart to `path`; returns what happened, for the console."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install -e '.[bench]')"
    scenarios = payload["scenarios"]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    _throughput(axes[0], scenarios)
    _latency(axes[1], scenarios)
    _scale(axes[2], scenarios)
    machine = payload["machine"]
    figure.suptitle(
        f"htq benchmarks ({payload['size']}): {machine['nproc']} cores {machine['cpu']}, "
        f"Python {machine['python']}, Valkey {machine['valkey']}, {payload['started'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"chart written to {path}"


def _metric(scenarios: dict[str, Any], scenario: str, key: str) -> dict[str, Any] | None:
    for metric in scenarios.get(scenario, {}).get("metrics", []):
        if metric["key"] == key:
            found: dict[str, Any] = metric
            return found
    return None


def _throughput(ax: Any, scenarios: dict[str, Any]) -> None:
    wanted = [
        ("enqueue", "enqueue.rps", "enqueue\n1 process"),
        ("enqueue", "enqueue.rps2", "enqueue\n2 processes"),
        ("dispatch", "dispatch.rps", "dispatch\n10 threads"),
        ("compare", "compare.celery", "Celery\n10 threads"),  # when Celery was installed
    ]
    found = [(label, m) for s, key, label in wanted if (m := _metric(scenarios, s, key))]
    xs = range(len(found))
    for who in ("htq", "Celery"):
        mine = [(x, m) for x, (label, m) in zip(xs, found, strict=True)
                if label.startswith("Celery") == (who == "Celery")]  # fmt: skip
        if mine:
            ax.bar([x - 0.2 for x, _ in mine], [m["value"] for _, m in mine], 0.4, label=who)
    ax.bar([x + 0.2 for x in xs], [m["ceiling"] for _, m in found], 0.4, label="ceiling")
    for x, (_, m) in zip(xs, found, strict=True):
        ax.annotate(f"{m['ratio']:.2f}", (x - 0.2, m["value"]), ha="center", va="bottom")
    ax.set_xticks(list(xs), [label for label, _ in found])
    ax.set_ylabel("requests/s")
    ax.set_title("Throughput vs ceiling (ratio on bars)")
    ax.legend()


def _latency(ax: Any, scenarios: dict[str, Any]) -> None:
    def pair(scenario: str, field: str) -> tuple[float, float] | None:
        data = scenarios.get(scenario, {}).get("data", {})
        for part in field.split("."):
            data = data.get(part, {}) if isinstance(data, dict) else {}
        return (data["p50"], data["p99"]) if "p50" in data else None

    # (label, (p50, p99), the target, whether the target is on p50 (else p99))
    wanted = [
        ("303 -> target", pair("latency", "after_303_ms"), 2.0, True),
        ("wake-up", pair("latency", "wake_up_ms"), 10.0, False),
        ("cancel", pair("cancel", "closed_ms"), 100.0, False),
        ("status, waiters", pair("waiters", "crowded.latency_ms"), 50.0, False),
    ]
    found = [(label, p, limit, on_p50) for label, p, limit, on_p50 in wanted if p is not None]
    xs = range(len(found))
    ax.bar([x - 0.2 for x in xs], [max(f[1][0], FLOOR) for f in found], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [max(f[1][1], FLOOR) for f in found], 0.4, label="p99")
    for x, (_, (p50, p99), _, _) in zip(xs, found, strict=True):
        for offset, value in ((-0.2, p50), (0.2, p99)):
            if value < FLOOR:  # a log scale has no room for it (303 -> target can be negative)
                ax.annotate(f"{value:.2f}", (x + offset, FLOOR), ha="center", va="bottom")
    for x, (_, _, limit, on_p50) in zip(xs, found, strict=True):
        left = x - 0.4 if on_p50 else x
        ax.hlines(limit, left, left + 0.4, colors="red", linestyles="dashed")
    ax.set_xticks(list(xs), [f[0] for f in found])
    ax.set_yscale("log")
    ax.set_ylabel("ms (log); red dashes: the target, over its bar")
    ax.set_title("Latency")
    ax.legend(loc="upper left")


def _scale(ax: Any, scenarios: dict[str, Any]) -> None:
    levels = scenarios.get("scale", {}).get("data", {}).get("levels", [])
    ax.set_title("As the queue grows (vs an empty queue, alongside)")
    if not levels:
        return
    labels = [f"{level['level']:,}" for level in levels]
    rate = [level["enqueue"]["rps"] / level["enqueue_empty"]["rps"] for level in levels]
    listing = [level["listing_ms"]["p50"] / level["listing_empty_ms"]["p50"] for level in levels]
    ax.axhspan(0.9, 1.1, color="tab:green", alpha=0.12, label="target: within 10%")
    ax.plot(labels, rate, "o-", label="POST / rate ratio")
    ax.plot(labels, listing, "s--", label="GET /?limit=100 p50 ratio")
    ax.set_ylim(0.5, 1.5)
    ax.set_xlabel("requests queued")
    ax.set_ylabel("ratio to the empty queue")
    ax.legend(loc="lower left")


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    print(draw(json.loads(Path(source).read_text()), Path(target)))

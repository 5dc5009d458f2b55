"""Figures, their ceilings and targets; the table, the JSON, the doc's results block.

Usage:
    python -m bench.report bench/results/latest.json    # rewrite the doc's results block
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

DOC_BEGIN = "<!-- bench:results -->"
DOC_END = "<!-- /bench:results -->"


@dataclass(frozen=True, slots=True)
class Goal:
    """A target: the ratio to the ceiling (or the figure itself) against a limit."""

    subject: Literal["ratio", "value"]
    op: Literal[">=", "<="]
    limit: float

    def met(self, value: float, ratio: float | None) -> bool | None:
        measured = ratio if self.subject == "ratio" else value
        if measured is None or math.isnan(measured):
            return None
        return measured >= self.limit if self.op == ">=" else measured <= self.limit

    def describe(self, unit: str) -> str:
        if self.subject == "ratio":
            return f"ratio {self.op} {self.limit:g}"
        return f"{self.op} {_number(self.limit, unit)}"


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure of the table; `key` names it for the JSON, the chart and the smoke test."""

    key: str
    scenario: str
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    ceiling_name: str = ""
    goal: Goal | None = None

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or not self.ceiling or math.isnan(self.ceiling):
            return None
        return self.value / self.ceiling

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return ""
        met = self.goal.met(self.value, self.ratio)
        return "n/a" if met is None else "PASS" if met else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "scenario": self.scenario,
            "name": self.name,
            "value": _finite(self.value),
            "unit": self.unit,
            "ceiling": _finite(self.ceiling),
            "ceiling_name": self.ceiling_name,
            "ratio": _finite(self.ratio),
            "target": self.goal.describe(self.unit) if self.goal else None,
            "goal": asdict(self.goal) if self.goal else None,
            "result": self.verdict or None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metric:
        nan = math.nan
        return cls(
            key=data["key"],
            scenario=data["scenario"],
            name=data["name"],
            value=nan if data["value"] is None else data["value"],
            unit=data["unit"],
            ceiling=data["ceiling"],
            ceiling_name=data["ceiling_name"],
            goal=Goal(**data["goal"]) if data.get("goal") else None,
        )


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit in ("req/s", "B", "req"):
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}".rstrip()


# -- the table ------------------------------------------------------------------------------

HEADERS = ("scenario", "figure", "value", "ceiling / baseline", "ratio", "target", "result")


def rows(metrics: Sequence[Metric]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for m in metrics:
        ceiling = f"{_number(m.ceiling, m.unit)} ({m.ceiling_name})" if m.ceiling_name else ""
        ratio = "" if m.ratio is None else f"{m.ratio:.2f}"
        target = m.goal.describe(m.unit) if m.goal else ""
        out.append(
            (m.scenario, m.name, _number(m.value, m.unit), ceiling, ratio, target, m.verdict)
        )
    return out


def text_table(metrics: Sequence[Metric]) -> str:
    table = [HEADERS, *rows(metrics)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(metrics: Sequence[Metric]) -> str:
    def line(cells: Sequence[str]) -> str:
        escaped = (re.sub(r"<(?=[A-Za-z/])", "&lt;", cell) for cell in cells)  # no HTML tags
        return "| " + " | ".join(escaped) + " |"

    body = [line(row) for row in rows(metrics)]
    return "\n".join([line(HEADERS), line(["---"] * len(HEADERS)), *body])


# -- the machine ----------------------------------------------------------------------------


def describe_machine(valkey_version: str, load_generator: str) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "valkey": valkey_version,
        "load_generator": load_generator,
        "packages": {name: _version(name) for name in ("htq", "tornado", "redis", "httpx")},
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found[1].strip() if found else "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def machine_line(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    return (
        f"{machine['nproc']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}, Python {machine['python']}, Valkey {machine['valkey']}, "
        f"load by {machine['load_generator']}; {packages}"
    )


# -- files ----------------------------------------------------------------------------------


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def results_block(payload: dict[str, Any], metrics: Sequence[Metric]) -> str:
    """The doc's results: when, on what, the table, the verdicts."""
    misses = [m.name for m in metrics if m.verdict == "MISS"]
    passed = sum(m.verdict == "PASS" for m in metrics)
    summary = f"{passed} of {passed + len(misses)} targets met"
    summary += f"; missed: {', '.join(misses)}." if misses else "."
    return "\n".join(
        [
            f"Run of {payload['started']} (`{payload['size']}` sizes, "
            f"{payload['seconds']:.0f} s), on {machine_line(payload['machine'])}.",
            "",
            markdown_table(metrics),
            "",
            summary,
        ]
    )


def update_doc(path: Path, block: str) -> bool:
    """Replace the text between the doc's results markers; False if it has none."""
    if not path.exists():
        return False
    text = path.read_text()
    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if start < 0 or end < start:
        return False
    path.write_text(text[: start + len(DOC_BEGIN)] + "\n" + block + "\n" + text[end:])
    return True


def main(argv: list[str]) -> int:
    payload = json.loads(Path(argv[0]).read_text())
    metrics = [Metric.from_json(m) for s in payload["scenarios"].values() for m in s["metrics"]]
    doc = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    updated = update_doc(doc, results_block(payload, metrics))
    print(f"results block of {doc} {'updated' if updated else 'not found'}")
    return 0 if updated else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

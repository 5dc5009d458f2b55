"""Load generators, each in a process of its own (never sharing a GIL with what is measured).

`generate(Load(...))` runs `wrk` when it is on PATH (and allowed), else this module's own
asyncio generator: N keep-alive connections, each sending its next request as soon as the
previous answer is read (a closed loop, as wrk does), for a bounded time and count.

    python -m bench.load http URL [--method M] [--body B] [--connections N] [--duration S]
    python -m bench.load waiters BASE_URL --uuids FILE [--timeout S]

`waiters` opens one connection per uuid, sends `GET /<uuid>/response/` on each, prints
`ready` once all are sent, then waits for the answers and prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.stats import summarize

MAX_REQUESTS = 5_000_000  # a bound on any one run, whatever its duration


@dataclass(frozen=True, slots=True)
class Load:
    """What to send, how hard and for how long."""

    url: str
    method: str = "GET"
    body: str | None = None
    connections: int = 50
    duration: float = 5.0
    token: str | None = None  # sent as `Authorization: Bearer <token>`


@dataclass(slots=True)
class LoadResult:
    generator: str
    requests: int
    errors: int
    seconds: float
    rps: float
    latency_ms: dict[str, float]
    statuses: dict[str, int] = field(default_factory=dict)
    runs_rps: list[float] = field(default_factory=list)  # each run's rate, when repeated

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def generate(load: Load, *, use_wrk: bool) -> LoadResult:
    """Run one load in a child process and return what it measured."""
    if use_wrk and wrk_available():
        return _run_wrk(load)
    return _run_python(load)


# -- the parent's side -----------------------------------------------------------------------


def _run_python(load: Load) -> LoadResult:
    args = [sys.executable, "-m", "bench.load", "http", load.url, "--method", load.method]
    args += ["--connections", str(load.connections), "--duration", str(load.duration)]
    if load.body is not None:
        args += ["--body", load.body]
    if load.token is not None:
        args += ["--token", load.token]
    # subprocess.run kills the child (by PID) on a timeout or any error.
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=load.duration + 60, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(**result)


def _run_wrk(load: Load) -> LoadResult:
    seconds = max(1, round(load.duration))
    with tempfile.TemporaryDirectory(prefix="htq-bench-wrk-") as tmp:
        script = Path(tmp) / "request.lua"
        script.write_text(_wrk_script(load))
        args = ["wrk", "-t1", f"-c{load.connections}", f"-d{seconds}s", "--latency"]
        args += ["--timeout", "30s", "-s", str(script), load.url]
        done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def _wrk_script(load: Load) -> str:
    lines = [f'wrk.method = "{load.method}"']
    if load.body is not None:
        lines.append(f"wrk.body = {json.dumps(load.body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if load.token is not None:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {load.token}"')
    return "\n".join(lines) + "\n"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    """wrk's `1.23ms`, `456.00us`, `2.00s` in milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise RuntimeError(f"unexpected wrk duration {text!r}")
    return float(found[1]) * _UNITS[found[2]]


def parse_wrk(output: str) -> LoadResult:
    """Requests, rate, percentiles and errors from `wrk --latency` output."""

    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.M)

    total = find(r"(\d+) requests in ([\d.]+\w+),")
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests, seconds = int(total[1]), _ms(total[2]) / 1000
    latency = {f"p{q}": _ms(v) for q, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)$", output, re.M)}
    peak = find(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)")
    latency["max"] = _ms(peak[1]) if peak else float("nan")
    sockets = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    bad = find(r"Non-2xx or 3xx responses: (\d+)")
    errors = sum(map(int, sockets.groups())) if sockets else 0
    return LoadResult(
        generator="wrk",
        requests=requests,
        errors=errors + (int(bad[1]) if bad else 0),
        seconds=seconds,
        rps=requests / seconds if seconds else 0.0,
        latency_ms=latency,
    )


# -- the child's side: an asyncio HTTP/1.1 client ----------------------------------------------


def _request_bytes(
    url: str, method: str, body: str | None, token: str | None = None
) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    payload = (body or "").encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    return host, port, head.encode() + b"\r\n" + payload


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length framed, as every server here sends); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    start = head.lower().find(b"\r\ncontent-length:")
    if start >= 0:
        end = head.index(b"\r\n", start + 2)
        length = int(head[start + 17 : end])
        if length:
            await reader.readexactly(length)
    return status


async def _connection(host: str, port: int, request: bytes, deadline: float, out: _Tally) -> None:
    while time.perf_counter() < deadline and out.sent < MAX_REQUESTS:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            out.errors += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.perf_counter() < deadline and out.sent < MAX_REQUESTS:
                out.sent += 1
                started = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                out.latencies.append(time.perf_counter() - started)
                out.statuses[status] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            out.errors += 1
        finally:
            writer.close()


@dataclass
class _Tally:
    sent: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


async def http_load(load: Load) -> LoadResult:
    host, port, request = _request_bytes(load.url, load.method, load.body, load.token)
    tally = _Tally()
    started = time.perf_counter()
    deadline = started + load.duration
    await asyncio.gather(
        *(_connection(host, port, request, deadline, tally) for _ in range(load.connections))
    )
    seconds = time.perf_counter() - started
    bad = sum(n for status, n in tally.statuses.items() if status >= 400)
    return LoadResult(
        generator="python-asyncio",
        requests=len(tally.latencies),
        errors=tally.errors + bad,
        seconds=seconds,
        rps=len(tally.latencies) / seconds,
        latency_ms=summarize(tally.latencies),
        statuses={str(k): v for k, v in sorted(tally.statuses.items())},
    )


async def hold_waiters(base_url: str, uuids: list[str], timeout: float) -> dict[str, Any]:
    """Block one connection per uuid on /response/; report when each was answered."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connecting = asyncio.Semaphore(100)  # stay under the server's listen backlog
    sent = 0
    all_sent = asyncio.Event()
    answered: list[float] = []
    statuses: Counter[int] = Counter()

    async def wait_one(uuid: str) -> None:
        nonlocal sent
        async with connecting:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET /{uuid}/response/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
        sent += 1
        if sent == len(uuids):
            all_sent.set()
        try:
            statuses[await read_response(reader)] += 1
            answered.append(time.time())
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(wait_one(uuid)) for uuid in uuids]
    await asyncio.wait_for(all_sent.wait(), timeout)
    print("ready", flush=True)
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    return {
        "waiters": len(uuids),
        "answered": len(answered),
        "statuses": {str(k): v for k, v in statuses.items()},
        "first": min(answered, default=None),
        "last": max(answered, default=None),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    modes = parser.add_subparsers(dest="mode", required=True)
    http = modes.add_parser("http")
    http.add_argument("url")
    http.add_argument("--method", default="GET")
    http.add_argument("--body")
    http.add_argument("--connections", type=int, default=50)
    http.add_argument("--duration", type=float, default=5.0)
    http.add_argument("--token")
    waiters = modes.add_parser("waiters")
    waiters.add_argument("base_url")
    waiters.add_argument("--uuids", type=Path, required=True)
    waiters.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.mode == "http":
        load = Load(args.url, args.method, args.body, args.connections, args.duration, args.token)
        print(json.dumps(asyncio.run(http_load(load)).to_json()), flush=True)
    else:
        uuids = args.uuids.read_text().split()
        print(json.dumps(asyncio.run(hold_waiters(args.base_url, uuids, args.timeout))))


if __name__ == "__main__":
    main()

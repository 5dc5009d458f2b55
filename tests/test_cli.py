"""The command line as a user meets it: help, versions, bad values, env vars, Redis away."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from htq import __version__
from htq.config import redis_url
from htq.errors import ConfigError
from tests.support.processes import ROOT, HtqProcess, htq, start_server
from tests.support.redis_server import free_port

SPEC = Path(__file__).resolve().parent.parent.parent / "shared" / "spec" / "htq-readme.md"
SPEC_USAGE = [
    "HTTP Task Queue (htq) command-line interface",
    "    htq server [--host <host>] [--port <port>] [--redis <redis>] [--debug]",
    "    htq worker [--threads <n>] [--redis <redis>] [--debug]",
    "    -h --help           Show this screen.",
    "    -v --version        Show version.",
    "    --debug             Turns on debug logging.",
    "    --host <host>       Host of the HTTP service [default: localhost].",
    "    --port <port>       Port of the HTTP service [default: 5000].",
    "    --redis <redis>     Host/port of the Redis server [default: localhost:6379].",
    "    --threads <n>       Number of threads a worker should spawn [default: 10].",
]


def test_help_keeps_the_spec_usage_and_adds_tui_and_up() -> None:
    result = htq("-h")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for line in SPEC_USAGE:
        assert line in lines
    assert any(line.strip().startswith("htq tui [--url <url>]") for line in lines)
    assert any(line.strip().startswith("htq up ") for line in lines)
    assert "HTQ_REDIS" in result.stdout, "env vars are documented"


def test_help_usage_matches_the_spec_file() -> None:
    if not SPEC.exists():
        pytest.skip("the spec is not beside this checkout")
    spec = SPEC.read_text()
    for line in SPEC_USAGE:
        assert line in spec


def test_version() -> None:
    result = htq("-v")
    assert result.returncode == 0 and result.stdout.strip() == f"htq {__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["server", "--port", "http"], "--port: expected a number, not 'http'"),
        (["server", "--port", "70000"], "--port: must be between 0 and 65535"),
        (["worker", "--threads", "0"], "--threads: must be between 1 and 1000"),
        (["worker", "--threads", "many"], "--threads: expected a number"),
        (["server", "--redis", "ftp://host"], "--redis: unsupported scheme 'ftp'"),
        (["server", "--redis", "host:port"], "--redis: expected host:port"),
        (["server", "--redis", "host:0"], "--redis: port must be 1-65535"),
        (["server", "--ttl", "-1"], "--ttl: must be at least 0"),
        (["server", "--prefix", "a b"], "--prefix: use 1-64 letters"),
        (["worker", "--lease", "0.1"], "--lease: must be between 1 and 3600"),
        (["worker", "--processes", "2"], "--processes is not an option of `htq worker`"),
        (["tui", "--url", "ftp://x"], "--url: expected the server's http:// URL"),
        (["tui", "--interval", "0"], "--interval: must be between 0.1 and 3600"),
        (["server", "--idempotency-ttl", "0"], "--idempotency-ttl: must be between 1 and"),
        (["up", "--idempotency-ttl", "a day"], "--idempotency-ttl: expected a number"),
        (["worker", "--allow", "10.0.0.0/33"], "--allow: '10.0.0.0/33' is not a host"),
    ],
)
def test_a_bad_option_value_is_one_clear_line(args: list[str], message: str) -> None:
    result = htq(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_bad_environment_value_names_the_option() -> None:
    result = htq("worker", env={"HTQ_THREADS": "lots"})
    assert result.returncode == 2 and "--threads: expected a number, not 'lots'" in result.stderr


@pytest.mark.parametrize("command", ["server", "worker", "up"])
def test_redis_unreachable_at_start_names_the_address(command: str) -> None:
    port = free_port()
    result = (
        htq(command, "--redis", f"127.0.0.1:{port}", "--port", str(free_port()))
        if command != "worker"
        else htq(command, "--redis", f"127.0.0.1:{port}")
    )
    assert result.returncode == 1
    assert f"cannot reach Redis at 127.0.0.1:{port}" in result.stderr
    assert "`htq up`" in result.stderr and "--redis" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["server", "worker"])
def test_a_port_that_is_not_redis_fails_in_seconds(command: str) -> None:
    """Something listens there (an HTTP server, say) but never answers as Redis would."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        extra = ["--port", str(free_port())] if command == "server" else []
        started = time.monotonic()
        result = htq(command, "--redis", f"127.0.0.1:{port}", *extra)
    assert result.returncode == 1 and time.monotonic() - started < 15
    (said,) = result.stderr.strip().splitlines()
    assert said.startswith(f"htq {command}: cannot reach Redis at 127.0.0.1:{port}")


def test_server_prints_the_spec_lines_and_serves(redis_url: str) -> None:
    server = start_server(redis_url, "clitest")
    try:
        output = server.output().splitlines()
        assert output[0] == "Starting htq REST server..."
        assert output[1] == f" * Running on {server.url}"
        assert httpx.get(f"{server.url}stats").status_code == 200
    finally:
        assert server.stop() == 0


def test_options_come_from_the_environment(redis_url: str) -> None:
    port = free_port()
    env = {
        "HTQ_REDIS": redis_url,
        "HTQ_PORT": str(port),
        "HTQ_HOST": "127.0.0.1",
        "HTQ_PREFIX": "envtest",
    }
    server = HtqProcess(["server"], " * Running on", env=env)
    try:
        assert server.output().splitlines()[:2] == [
            "Starting htq REST server...",
            f" * Running on http://127.0.0.1:{port}/",
        ]
    finally:
        assert server.stop() == 0


def test_a_port_in_use_is_one_clear_line(redis_url: str) -> None:
    server = start_server(redis_url, "clitest")
    try:
        port = server.url.rsplit(":", 1)[1].strip("/")
        result = htq("server", "--host", "127.0.0.1", "--port", port, "--redis", redis_url)
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("localhost:6379", "redis://localhost:6379/0"),
        ("redis.internal:6380/2", "redis://redis.internal:6380/2"),
        ("10.0.0.5", "redis://10.0.0.5:6379/0"),
        ("[::1]:6379", "redis://[::1]:6379/0"),
        ("redis://:secret@host:6379/1", "redis://:secret@host:6379/1"),
        ("rediss://host:6380", "rediss://host:6380"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redis_addresses(address: str, url: str) -> None:
    assert redis_url(address) == url


@pytest.mark.parametrize("address", ["http://host", "host:", "host:x", "unix://", "redis://"])
def test_bad_redis_addresses(address: str) -> None:
    with pytest.raises(ConfigError):
        redis_url(address)


def test_prefork_serves_and_stops_every_process(redis_url: str) -> None:
    server = start_server(redis_url, "clitest-prefork", "--processes", "2")
    children_file = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    try:
        server.wait_for("Starting 2 processes")
        children: list[int] = []
        deadline = time.monotonic() + 5
        while len(children) < 2 and time.monotonic() < deadline:
            children = [int(pid) for pid in children_file.read_text().split()]
        assert len(children) == 2
        for _ in range(4):
            posted = httpx.post(server.url, json={"url": "http://127.0.0.1:9/"})
            assert posted.status_code == 303
    finally:
        assert server.stop() == 0
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_the_readme_shows_the_help_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("$ htq -h\n") + len("$ htq -h\n")
    shown = readme[start : readme.index("```", start)].rstrip("\n")
    assert shown == htq("-h").stdout.rstrip("\n")


@pytest.mark.parametrize(
    ("command", "has", "lacks"),
    [
        ("server", "--port", "--threads"),
        ("worker", "--threads", "--port"),
        ("up", "--data-dir", "--url"),
        ("tui", "--url", "--redis"),
    ],
)
def test_each_command_has_a_help_of_its_own(command: str, has: str, lacks: str) -> None:
    for flag in ("-h", "--help"):
        result = htq(command, flag)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].endswith(".") and f"    htq {command} " in result.stdout
        options = [line.split()[0] for line in lines if line.startswith("    --")]
        assert has in options and lacks not in options


def test_an_unknown_option_is_named() -> None:
    result = htq("worker", "--bogus", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == "htq: unknown option --bogus (see htq -h)"


def test_plain_htq_shows_the_usage() -> None:
    result = htq()
    assert result.returncode == 2
    assert result.stderr.startswith("htq: which command?") and "Usage:" in result.stderr


def test_a_bad_max_timeout_is_one_clear_line() -> None:
    result = htq("server", "--max-timeout", "0", "--port", str(free_port()))
    assert result.returncode == 2
    assert result.stderr.strip() == "htq server: --max-timeout: must be between 1 and 604800, not 0"

"""`htq up` (what `make run` runs): the whole service in one process on an embedded Valkey."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import HtqProcess, htq
from tests.support.redis_server import free_port
from tests.support.target import Target


def start_up(data_dir: Path, port: int) -> HtqProcess:
    args = ["up", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    return HtqProcess(args, "workers...", url=f"http://127.0.0.1:{port}/")


def valkey_pid(data_dir: Path) -> int:
    return int((data_dir / "valkey.pid").read_text().split()[0])


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


def test_up_serves_sends_and_keeps_its_data(tmp_path: Path, target: Target) -> None:
    port = free_port()
    service = start_up(tmp_path, port)
    try:
        lines = service.output().splitlines()
        assert lines[0].startswith("Embedded Valkey on redis://127.0.0.1:")
        assert lines[1:4] == [
            "Starting htq REST server...",
            f" * Running on http://127.0.0.1:{port}/",
            "Started 10 workers...",
        ]
        posted = httpx.post(service.url or "", content=json.dumps({"url": f"{target.url}/ip"}))
        location = posted.headers["Location"]
        answer = httpx.get(f"{location}response/", timeout=10).json()
        assert answer["status"] == "success" and answer["code"] == 200
        pid = valkey_pid(tmp_path)
    finally:
        assert service.stop() == 0
    assert not Path(f"/proc/{pid}").exists(), "the embedded Valkey stopped with it"

    again = start_up(tmp_path, port)
    try:
        assert httpx.get(f"{location}status/").json() == {"status": "success"}, "data kept"
    finally:
        assert again.stop() == 0


def test_up_after_a_kill_stops_the_orphaned_valkey(tmp_path: Path) -> None:
    port = free_port()
    first = start_up(tmp_path, port)
    orphan = valkey_pid(tmp_path)
    os.kill(first.pid, signal.SIGKILL)  # the up process only: its Valkey is left running
    first.wait(5)
    try:
        second = start_up(tmp_path, port)
        try:
            assert "left by an htq up that was killed" in second.output()
            assert httpx.get(f"{second.url}stats").status_code == 200
        finally:
            assert second.stop() == 0
        deadline = time.monotonic() + 5
        while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{orphan}").exists()
    finally:
        first.kill()  # the group: the orphan too, should anything above have failed


def test_two_ups_on_one_data_dir_are_refused(tmp_path: Path) -> None:
    first = start_up(tmp_path, free_port())
    try:
        result = HtqProcess(
            ["up", "--port", str(free_port()), "--data-dir", str(tmp_path)], "in use"
        )
        assert result.wait(10) == 1
        assert f"{tmp_path} is in use by another htq up (pid {first.pid})" in result.output()
    finally:
        assert first.stop() == 0


def test_a_data_dir_that_cannot_be_made_is_one_clear_line(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    result = htq("up", "--port", str(free_port()), "--data-dir", str(taken / "data"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"htq up: cannot use {taken / 'data'} as the data directory: Not a directory"
    )

"""`htq up` (what `make run` runs): the whole service in one process on an embedded Valkey."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from htq.embedded import OWNER_PIDFILE, PIDFILE
from htq.up import _take_over
from tests.support.processes import HtqProcess, htq
from tests.support.redis_server import free_port
from tests.support.target import Target


def start_up(data_dir: Path, port: int) -> HtqProcess:
    args = ["up", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    return HtqProcess(args, "workers...", url=f"http://127.0.0.1:{port}/")


def valkey_pid(data_dir: Path) -> int:
    """One pid per file, so that `kill $(cat .htq/valkey.pid)` reaches Valkey alone."""
    return int((data_dir / "valkey.pid").read_text())


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
        valkey_port = lines[0].split(":")[2].split("/")[0]
        assert lines[1] == f"Add a worker to it: htq worker --redis 127.0.0.1:{valkey_port}"
        assert lines[2:5] == [
            "Starting htq REST server...",
            f" * Running on http://127.0.0.1:{port}/",
            "Started 10 workers...",
        ]
        posted = httpx.post(service.url or "", json={"url": f"{target.url}/ip"})
        location = posted.headers["Location"]
        answer = httpx.get(f"{location}response/", timeout=10).json()
        assert answer["status"] == "success" and answer["code"] == 200
        pid = valkey_pid(tmp_path)
        assert pid != service.pid and int((tmp_path / "htq.pid").read_text()) == service.pid
    finally:
        assert service.stop() == 0
    assert not Path(f"/proc/{pid}").exists(), "the embedded Valkey stopped with it"
    assert not (tmp_path / "valkey.pid").exists() and not (tmp_path / "htq.pid").exists()

    again = start_up(tmp_path, port)
    try:
        assert httpx.get(f"{location}status/").json() == {"status": "success"}, "data kept"
        assert f"redis://127.0.0.1:{valkey_port}/0" in again.output(), "one port per data dir"
    finally:
        assert again.stop() == 0


def test_a_killed_up_leaves_no_valkey_behind(tmp_path: Path) -> None:
    first = start_up(tmp_path, free_port())
    orphan = valkey_pid(tmp_path)
    os.kill(first.pid, signal.SIGKILL)  # the up process only, as the OOM killer would
    first.wait(5)
    assert gone(orphan, within=5), "its supervisor stopped Valkey when up went away"
    second = start_up(tmp_path, free_port())
    try:
        assert httpx.get(f"{second.url}stats").status_code == 200
    finally:
        assert second.stop() == 0


def test_an_orphaned_valkey_is_stopped_by_the_next_up(tmp_path: Path) -> None:
    first = start_up(tmp_path, free_port())
    orphan = valkey_pid(tmp_path)
    supervisor = int(subprocess.check_output(["ps", "-o", "ppid=", "-p", str(orphan)]))
    os.kill(supervisor, signal.SIGKILL)  # Valkey's keeper gone: Valkey runs on, unkept
    os.kill(first.pid, signal.SIGKILL)
    first.wait(5)
    try:
        second = start_up(tmp_path, free_port())
        try:
            assert "left by an htq up that was killed" in second.output()
            assert httpx.get(f"{second.url}stats").status_code == 200
        finally:
            assert second.stop() == 0
        assert gone(orphan, within=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


def test_ctrl_c_lets_a_request_in_flight_finish_and_stores_it_once(
    tmp_path: Path, target: Target
) -> None:
    """SIGINT to the whole foreground group, as a terminal sends it: Valkey must outlive the
    worker's grace period, or the result is lost and the request sent again next time."""
    port = free_port()
    service = start_up(tmp_path, port)
    posted = httpx.post(service.url or "", json={"url": f"{target.url}/delay/1"})
    location = posted.headers["Location"]
    assert target.wait_for_request("/delay/1", 5) is not None
    os.killpg(service.pid, signal.SIGINT)
    assert service.wait(20) == 0
    again = start_up(tmp_path, port)
    try:
        assert httpx.get(f"{location}status/").json() == {"status": "success"}
        time.sleep(1.0)  # a request queued again would be sent by now
        assert [r.path for r in target.requests] == ["/delay/1"], "sent once"
    finally:
        assert again.stop() == 0


def test_a_valkey_that_dies_is_started_again(tmp_path: Path) -> None:
    service = start_up(tmp_path, free_port())
    try:
        first = valkey_pid(tmp_path)
        os.kill(first, signal.SIGKILL)
        assert gone(first, within=5)
        started = time.monotonic()
        while not _queues(service):
            assert time.monotonic() - started < 5, "serving again within seconds"
            time.sleep(0.1)
        # The pidfile is rewritten once Valkey answers, a moment after the first POST can pass.
        while valkey_pid(tmp_path) == first:
            assert time.monotonic() - started < 10, "a new Valkey, in the pidfile"
            time.sleep(0.05)
        assert service.output().count("starting it again on the same port") == 1
    finally:
        assert service.stop() == 0


def _queues(service: HtqProcess) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        answer = httpx.post(service.url or "", json={"url": "http://127.0.0.1:9/"})
        return answer.status_code == 303
    return False


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


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


def test_valkey_refusing_to_start_is_one_line_saying_why(tmp_path: Path) -> None:
    """A damaged append-only manifest: Valkey's own reason reaches the user, on one line."""
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "appendonly.aof.manifest").write_text("not a manifest\n")
    result = htq("up", "--port", str(free_port()), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    said = result.stderr.strip()
    assert said.startswith(f"htq up: cannot start the embedded Valkey in {tmp_path}: ")
    assert "\n" not in said and "Valkey said:" in said and "manifest" in said.lower()


def test_ctrl_c_says_what_it_waits_for_and_a_second_hands_back_now(
    tmp_path: Path, target: Target
) -> None:
    """The grace period is not silent, and the second Ctrl-C it offers does what it says:
    the request goes back to the queue at once (not when its lease runs out)."""
    port = free_port()
    service = start_up(tmp_path, port)
    location = httpx.post(service.url or "", json={"url": f"{target.url}/delay/30"}).headers[
        "Location"
    ]
    assert target.wait_for_request("/delay/30", 5) is not None
    os.killpg(service.pid, signal.SIGINT)
    said = service.wait_for_line("Stopping:", timeout=5)
    assert said is not None and "1 request(s) in flight get 30s to finish" in said
    assert "again to hand them back now" in said
    os.killpg(service.pid, signal.SIGINT)
    assert service.wait(10) == 0
    assert "Traceback" not in service.output()
    again = start_up(tmp_path, port)
    try:
        assert httpx.get(f"{location}status/").json()["status"] in ("queued", "pending")
        # Handed back, not left to its lease (10 s): sent again within a few seconds.
        deadline = time.monotonic() + 5
        while [r.path for r in target.requests].count("/delay/30") < 2:
            assert time.monotonic() < deadline, "sent again at once"
            time.sleep(0.05)
        assert httpx.delete(location).status_code == 204  # nothing in flight to wait for
    finally:
        assert again.stop() == 0


@pytest.mark.parametrize("valkey_pid", [None, "", "not a pid\n"])
def test_a_missing_or_damaged_valkey_pid_file_stops_nothing(
    tmp_path: Path, valkey_pid: str | None
) -> None:
    """Only valkey.pid names the Valkey to stop: the owner's pid in htq.pid (here a live
    process) is never taken for it."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        if valkey_pid is not None:
            (tmp_path / PIDFILE).write_text(valkey_pid)
        (tmp_path / OWNER_PIDFILE).write_text(f"{bystander.pid}\n")
        assert _take_over(tmp_path)
        assert bystander.poll() is None, "the owner's pid was signalled"
    finally:
        bystander.kill()
        bystander.wait()

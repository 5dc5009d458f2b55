"""The tutorials: the README's, run as written with a real curl against `htq up` and the
example target; and the spec's, step by step, against real `htq server` and `htq worker`."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from htq.config import StoreConfig
from tests.support.processes import HtqProcess, start_server, start_worker
from tests.support.readme import blocks
from tests.support.redis_server import free_port
from tests.support.target import Target

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VOLATILE = {"time", "elapsed", "start", "due"}  # numbers that differ on every run
CHECKED_HEADERS = {"location", "link", "content-type"}  # others: present, whatever their value
STEP_TIMEOUT = 30.0


class Reader:
    """Follows the README as a user does: the same commands, on this run's ports, with the ids
    this run's answers gave in place of the README's."""

    def __init__(self, port: int, example_port: int) -> None:
        self.replacements = {"localhost:5000": f"localhost:{port}"}
        self.replacements["127.0.0.1:5001"] = f"127.0.0.1:{example_port}"

    def localize(self, text: str) -> str:
        for shown, real in self.replacements.items():
            text = text.replace(shown, real)
        return text

    def learn_ids(self, expected: str, actual: str) -> None:
        """Pair the README's new ids with this run's, in the order they appear."""
        shown = [u for u in dict.fromkeys(UUID.findall(expected)) if u not in self.replacements]
        known = set(self.replacements.values())
        real = [u for u in dict.fromkeys(UUID.findall(actual)) if u not in known]
        assert len(real) >= len(shown), f"no new id in:\n{actual}"
        self.replacements.update(zip(shown, real, strict=False))


def split_answer(text: str) -> tuple[str | None, list[tuple[str, str]], str]:
    """A curl output: its status line and headers (with -i), and its body."""
    text = text.replace("\r\n", "\n")
    if not text.startswith("HTTP/"):
        return None, [], text.strip()
    head, _, body = text.partition("\n\n")
    status, *lines = head.splitlines()
    headers = [(n.strip().lower(), v.strip()) for n, _, v in (h.partition(":") for h in lines)]
    return status.strip(), headers, body.strip()


def like(expected: Any, actual: Any, where: str, loose: tuple[str, ...] = ()) -> None:
    """The same JSON but for the numbers that change on every run (and the `loose` fields,
    alike in type only); fields in the same order."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), where
        for key, value in expected.items():
            if key in VOLATILE or key in loose:
                assert key in VOLATILE or type(actual[key]) is type(value), f"{where}.{key}"
                continue
            like(value, actual[key], f"{where}.{key}", loose)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for n, (e, a) in enumerate(zip(expected, actual, strict=True)):
            like(e, a, f"{where}[{n}]", loose)
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def matches(expected: str, actual: str) -> None:
    status, headers, body = split_answer(expected)
    real_status, real_headers, real_body = split_answer(actual)
    assert real_status == status, actual
    real = dict(real_headers)
    for name, value in headers:
        assert name in real, f"no {name} header in:\n{actual}"
        if name in CHECKED_HEADERS:
            assert real[name] == value, f"{name}: {real[name]!r} != {value!r}"
    try:
        shown = json.loads(body) if body else None
    except ValueError:
        assert real_body == body
        return
    if shown is None:
        assert real_body == "", actual
        return
    # A response's headers and body are the example target's: compared in kind only.
    response = isinstance(shown, dict) and "code" in shown
    like(shown, json.loads(real_body), "body", ("headers", "data") if response else ())


def run_curl(reader: Reader, command: str, expected: str) -> None:
    """Run `command` as the README shows it; a GET again, as a user would, until it shows what
    the README shows (the worker may not have sent the request yet)."""
    argv = shlex.split(reader.localize(command))
    deadline = time.monotonic() + (10 if "-X" not in argv else 0)
    while True:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_TIMEOUT)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        reader.learn_ids(expected, done.stdout)
        try:
            matches(reader.localize(expected), done.stdout)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for_example(example: HtqProcess, reader: Reader, block: str, after: int) -> int:
    """Each line the README shows the example target printing (timestamps aside), printed
    after the lines of the block before; the index just past them. Within a block the order
    may vary: the cancel's DELETE and the dropped connection come in two threads at once."""
    last = after
    for line in block.splitlines():
        wanted = reader.localize(line.split(" ", 1)[1])

        def find(wanted: str = wanted) -> int | None:
            for n, printed in enumerate(example.lines[after:], after):
                if printed.split(" ", 1)[-1] == wanted:
                    return n
            return None

        found = example._until(find, 10)
        assert found is not None, (
            f"the example target did not print {wanted!r}:\n{example.output()}"
        )
        last = max(last, found + 1)
    return last


@pytest.fixture
def example() -> Iterator[HtqProcess]:
    example = HtqProcess(["--port", "0"], "Example target on", module="htq.example")
    try:
        yield example
    finally:
        example.stop()


def test_the_readme_tutorial_runs_as_written(tmp_path: Path, example: HtqProcess) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the tutorial's commands need curl, which is not installed")
    started = example.line_starting("Example target on")
    assert started is not None
    example_port = int(started.split(":")[2].split("/")[0])
    port = free_port()
    up = HtqProcess(
        ["up", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)],
        "workers...",
    )
    reader = Reader(port, example_port)
    steps = blocks("Tutorial")
    assert [b.language for b in steps].count("bash") >= 10
    seen = 0
    try:
        for step in steps:
            if step.language == "text":
                seen = wait_for_example(example, reader, step.text, seen)
                continue
            assert step.language == "bash" and step.text.startswith("$ "), step.text
            command, _, expected = step.text[2:].partition("\n")
            if command == ".venv/bin/python -m htq.example":
                assert reader.localize(expected.strip()) == started
            else:
                assert command.startswith("curl "), f"a step the test cannot run: {command}"
                run_curl(reader, command, expected)
    finally:
        assert up.stop() == 0
    assert len(reader.replacements) == 2 + 5, "every id the tutorial shows was one of this run's"


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as target:
        yield target


@pytest.fixture
def htq_server(store_config: StoreConfig) -> Iterator[HtqProcess]:
    server = start_server(store_config.redis_url, store_config.prefix)
    try:
        yield server
    finally:
        assert server.stop() == 0


def test_the_tutorial(htq_server: HtqProcess, store_config: StoreConfig, target: Target) -> None:
    assert htq_server.output().splitlines()[:2] == [
        "Starting htq REST server...",
        f" * Running on {htq_server.url}",
    ]
    api = httpx.Client(base_url=htq_server.url, timeout=30)

    # Send a POST ... This immediately returns a 303 See Other with the Location of the request.
    posted = api.post(
        "/",
        content=json.dumps({"url": f"{target.url}/ip"}),
        headers={"Content-Type": "application/json"},
    )
    assert posted.status_code == 303
    location = posted.headers["Location"]
    uuid = location.rstrip("/").rsplit("/", 1)[1]
    assert location == f"{htq_server.url}{uuid}/"

    # See what the request resource looks like.
    resource = api.get(location)
    assert resource.status_code == 200
    body = resource.json()
    assert body["status"] == "queued" and body["method"] == "get" and body["uuid"] == uuid
    assert 'rel="response"' in resource.headers["Link"]
    assert api.get(f"{location}status/").json() == {"status": "queued"}

    # Start a worker to actually send the request.
    worker = start_worker(store_config.redis_url, store_config.prefix, "--debug", threads=10)
    try:
        assert worker.wait_for(f"[{uuid}] response received").splitlines()[:3] == [
            "Started 10 workers...",
            f"[{uuid}] sending request...",
            f"[{uuid}] response received",
        ]
        assert api.get(f"{location}status/").json() == {"status": "success"}

        # Now let's use the link to the response itself.
        response = api.get(f"{location}response/")
        assert response.status_code == 200
        answer = response.json()
        assert list(answer)[:8] == [
            "status", "time", "code", "reason", "elapsed", "uuid", "headers", "data",
        ]  # fmt: skip
        assert answer["code"] == 200 and answer["reason"] == "OK" and answer["uuid"] == uuid
        assert json.loads(answer["data"]) == {"origin": "127.0.0.1"}
        assert answer["elapsed"] > 0 and answer["time"] >= body["time"]

        # Canceling a request: one delayed for 30 seconds.
        slow = api.post(  # as the tutorial's curl: -H Content-Type:application/json
            "/",
            content=json.dumps({"url": f"{target.url}/delay/30"}),
            headers={"Content-Type": "application/json"},
        )
        slow_location = slow.headers["Location"]
        slow_uuid = slow_location.rstrip("/").rsplit("/", 1)[1]
        assert target.wait_for_request("/delay/30", timeout=10) is not None
        assert api.get(f"{slow_location}status/").json() == {"status": "pending"}
        deleted_at = time.monotonic()
        deleted = api.delete(slow_location)
        assert deleted.status_code == 204
        assert api.get(f"{slow_location}status/").json() == {"status": "canceled"}
        # Internally this interrupts the request, and sends a DELETE to the endpoint.
        gone = target.wait_for_disconnect(timeout=5, path="/delay/30")
        assert gone is not None and gone - deleted_at < 1.0
        assert target.wait_for_delete("/delay/30", timeout=5) is not None
        assert api.get(f"{slow_location}response/").status_code == 404
        worker.wait_for(f"[{slow_uuid}] canceled")
    finally:
        assert worker.stop() == 0

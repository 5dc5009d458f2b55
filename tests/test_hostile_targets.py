"""Targets that attack the worker: compression bombs, stacked or unknown encodings, a head
trickled a byte at a time, a name server that never answers, a cancel racing a retry. Memory
and time stay bounded."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from htq.config import OutboundConfig, StoreConfig, WorkerConfig
from htq.models import RequestSpec, Status, validate_request
from htq.outbound import Outbound
from htq.store import Claim, Store
from htq.worker import Worker
from htq.worker._body import read_body
from htq.worker._exchange import (
    DELETE_TIMEOUT,
    open_request,
    send,
)
from htq.worker._in_flight import InFlight, Interrupt
from htq.worker._resolver import Addresses, Resolver
from htq.worker._transport import InterruptibleTransport
from tests.support.processes import HtqProcess, start_worker
from tests.support.store import attempts, done, enqueue, wait_for_status
from tests.support.target import Target, encoded, text_bytes

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture
def capped(config: WorkerConfig) -> Iterator[Worker]:
    """A worker of one thread whose responses are cut at 1 MiB."""
    with Worker(replace(config, max_response_bytes=MiB)) as worker:
        yield worker


def guard() -> Outbound:
    """The outbound guard of a worker with the default options."""
    return Outbound.of(OutboundConfig(), "redis://127.0.0.1:1")


def stored(store: Store, uuid: str, status: Status = Status.SUCCESS) -> dict[str, Any]:
    assert done(store, uuid, timeout=30) is status, store.response(uuid).resource
    response = store.response(uuid).resource
    assert response is not None
    return response


# -- compressed responses ----------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_compression_bomb_is_cut_at_the_cap(
    store: Store, target: Target, capped: Worker, coding: str
) -> None:
    uuid = enqueue(store, url=f"{target.url}/encoded/{coding}/{GiB}?fill=zeros", timeout=20)
    response = stored(store, uuid)
    assert response["truncated"] is True and response["encoding"] == "base64"
    assert base64.b64decode(response["data"]) == bytes(MiB)
    assert response["headers"]["Content-Encoding"] == coding, "the headers as the target sent"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_bomb_is_decoded_within_the_cap_and_a_step(target: Target, coding: str) -> None:
    """The body read (a bytearray grows by an eighth), a step or two, and no copy of it nor
    a chunk decoded whole beside it: before, 2.1 to 2.3 MiB."""
    url = f"{target.url}/encoded/{coding}/{GiB}?fill=zeros"
    encoded(coding, GiB, "zeros")  # built before measuring
    with (
        InterruptibleTransport(InFlight(), trust_env=False, outbound=guard()) as transport,
        open_request(transport, "GET", url, {}, None, 20) as response,
    ):
        tracemalloc.start()
        try:
            body, truncated, _ = read_body(response, MiB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"{coding} bomb read with a peak of {peak / MiB:.2f} MiB (cap 1 MiB)")
    assert truncated and body == bytes(MiB)
    assert peak < MiB * 7 // 4, peak


@pytest.mark.parametrize("size", [1_000_000, MiB, MiB + 1])
def test_a_compressed_body_near_the_cap_is_whole_or_marked_cut(
    store: Store, target: Target, capped: Worker, size: int
) -> None:
    response = stored(store, enqueue(store, url=f"{target.url}/encoded/gzip/{size}"))
    assert response["data"] == text_bytes(min(size, MiB)).decode()
    assert response.get("truncated", False) is (size > MiB)


def test_a_raw_deflate_stream_is_decoded_too(store: Store, target: Target, capped: Worker) -> None:
    # Servers that send deflate without zlib's header exist; httpx decoded them, so does htq.
    url = f"{target.url}/encoded/deflate-raw/1000?label=deflate"
    response = stored(store, enqueue(store, url=url))
    assert response["data"] == text_bytes(1000).decode()


@pytest.mark.parametrize("codings", ["gzip,gzip", "deflate,gzip", "br", "zstd", "x-foo", "gzip,br"])
def test_stacked_or_unknown_encodings_are_refused(
    store: Store, target: Target, capped: Worker, codings: str
) -> None:
    size = 2 * GiB if codings == "gzip,gzip" else 1000
    uuid = enqueue(store, url=f"{target.url}/encoded/{codings}/{size}?fill=zeros")
    response = stored(store, uuid, Status.ERROR)
    shown = ", ".join(codings.split(","))
    assert response["message"].startswith(f"Refused: the response's Content-Encoding is '{shown}'")


def test_an_encoding_the_request_asked_for_is_kept_as_received(
    store: Store, target: Target, capped: Worker
) -> None:
    url = f"{target.url}/encoded/br/1000"
    uuid = enqueue(store, url=url, headers={"Accept-Encoding": "br;q=1.0, gzip"})
    response = stored(store, uuid)
    assert response["encoding"] == "base64" and "truncated" not in response
    assert base64.b64decode(response["data"]) == encoded("br", 1000)
    assert response["headers"]["Content-Encoding"] == "br"


def test_a_corrupt_compressed_body_is_an_error(
    store: Store, target: Target, capped: Worker
) -> None:
    uuid = enqueue(store, url=f"{target.url}/encoded/identity/1000?label=gzip")
    response = stored(store, uuid, Status.ERROR)
    assert response["message"].startswith("Could not decode the gzip body: ")


# -- time: a target that trickles -------------------------------------------------------------


def test_a_trickled_head_ends_at_the_requests_timeout(
    store: Store, target: Target, worker: Worker
) -> None:
    uuid = enqueue(store, url=f"{target.url}/trickle?interval=0.2", timeout=1.5)
    response = stored(store, uuid, Status.TIMEOUT)
    print(f"trickled head held the thread {response['elapsed'] / 1000:.2f} s (timeout 1.5 s)")
    assert 1400 <= response["elapsed"] < 2500
    assert target.wait_for_disconnect(2, "/trickle") is not None


def test_a_trickled_delete_frees_the_thread_at_its_deadline(
    store: Store, target: Target, worker: Worker
) -> None:
    """The cancel DELETE's limit is for the whole exchange: a head trickled a byte every 0.5 s
    (each byte well within any per-read timeout) holds the only thread DELETE_TIMEOUT at most."""
    uuid = enqueue(store, url=f"{target.url}/delay/30?trickle=0.5")
    assert target.wait_for_request("/delay/30", 5) is not None
    assert store.cancel(uuid) is Status.PENDING
    delete = target.wait_for_delete("/delay/30", 5)
    assert delete is not None
    after = enqueue(store, url=f"{target.url}/ip")
    sent = target.wait_for_request("/ip", DELETE_TIMEOUT + 5)
    assert sent is not None, "the thread is still held by the DELETE"
    held = sent.time - delete.time
    print(f"trickled DELETE held the thread {held:.2f} s (deadline {DELETE_TIMEOUT:g} s)")
    assert DELETE_TIMEOUT - 0.5 <= held < DELETE_TIMEOUT + 1.0
    assert done(store, after) is Status.SUCCESS


# -- time: a name server that never answers ------------------------------------------------------


class SlowResolver:
    """Looks names up as a name server that answers only when told to (never, in a test)."""

    def __init__(self) -> None:
        self.answer = threading.Event()
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Addresses:
        self.asked.append(host)
        self.answer.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@pytest.fixture
def slow_dns() -> Iterator[SlowResolver]:
    slow = SlowResolver()
    yield slow
    slow.answer.set()


def sending(
    in_flight: InFlight, resolver: Resolver, spec: RequestSpec, after: Any = None
) -> tuple[dict[str, Any], float]:
    """`spec` sent as a sender thread sends it (held to its timeout, interruptible); `after`
    is called in another thread once sending began. The response and the seconds it took."""
    claim = Claim("u", "token", 1, spec)
    with InterruptibleTransport(
        in_flight, trust_env=False, outbound=guard(), resolver=resolver
    ) as transport:
        started = time.monotonic()
        in_flight.begin(claim, spec.timeout)
        if after is not None:
            threading.Thread(target=after, daemon=True).start()
        try:
            response = send(transport, spec, claim.uuid, 1024)
        finally:
            in_flight.sent()
            in_flight.release()
    return response, time.monotonic() - started


def test_a_name_that_never_resolves_ends_at_the_deadline_or_a_cancel(
    target: Target, slow_dns: SlowResolver
) -> None:
    """getaddrinfo cannot be interrupted: the lookup runs in the resolver's own threads and the
    sender waits for it as for a socket, to the request's deadline or an interrupt."""
    resolver = Resolver(slow_dns, threads=2)
    slow = validate_request({"url": f"http://slow.test:{target.port}/ip", "timeout": 1})
    response, took = sending(InFlight(), resolver, slow)
    print(f"a lookup never answered held the thread {took:.2f} s (timeout 1 s)")
    assert response["status"] == "timeout" and 0.9 <= took < 1.5, (response, took)

    in_flight, canceled = InFlight(), 0.0

    def cancel() -> None:
        nonlocal canceled
        if wait_for(lambda: len(slow_dns.asked) == 2):  # the sender waits for its lookup
            canceled = time.monotonic()
            in_flight.interrupt(Interrupt.CANCELED)

    response, _ = sending(in_flight, resolver, replace(slow, timeout=30.0), after=cancel)
    took = time.monotonic() - canceled
    print(f"a cancel ended the wait for a lookup in {took * 1000:.0f} ms")
    assert response["status"] == "error" and "interrupted (canceled)" in response["message"]
    assert canceled and took < 1.0, took

    # Both lookup threads are held: a literal address needs none and is sent at once; a name
    # waits its turn until its deadline, and its lookup, canceled, never runs.
    response, took = sending(InFlight(), resolver, replace(slow, url=f"{target.url}/ip"))
    assert response["status"] == "success" and took < 1.0, (response, took)
    response, _ = sending(InFlight(), resolver, replace(slow, timeout=0.3))
    assert response["status"] == "timeout"
    slow_dns.answer.set()
    with pytest.raises(socket.gaierror):
        resolver.lookup("after.test", 80).result(timeout=5)
    assert slow_dns.asked == ["slow.test", "slow.test", "after.test"]


def test_a_name_server_that_never_answers_holds_only_its_own_names(
    target: Target, slow_dns: SlowResolver
) -> None:
    """Each lookup has a thread of its own (up to a bound of many): eight lookups of a hostile
    domain held do not make another name wait behind them."""

    def resolve(host: str, port: int) -> Addresses:
        if host.endswith(".slow.test"):
            return slow_dns(host, port)
        return socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)

    resolver = Resolver(resolve)
    for n in range(8):
        resolver.lookup(f"{n}.slow.test", 80)
    assert wait_for(lambda: len(slow_dns.asked) == 8)
    fine = validate_request({"url": f"http://fine.test:{target.port}/ip", "timeout": 2})
    response, took = sending(InFlight(), resolver, fine)
    assert response["status"] == "success" and took < 1.0, (response, took)


# -- memory: a real worker process ---------------------------------------------------------------


def peak_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM) since it started or was last reset."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1])


def reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current resident size (Linux 4.0+)


@pytest.fixture
def capped_process(store_config: StoreConfig) -> Iterator[HtqProcess]:
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/<pid>/clear_refs to measure a peak per response")
    worker = start_worker(
        store_config.redis_url, store_config.prefix, "--max-response-bytes", str(MiB), threads=1
    )
    try:
        yield worker
    finally:
        worker.stop()


CASES = [
    ("plain 1 MB text", "/text/1000000", Status.SUCCESS),
    ("plain 8 MB text (cut)", "/text/8000000", Status.SUCCESS),
    ("plain 1 MB of NULs as text", "/zeros/1000000", Status.SUCCESS),
    ("gzip 1 MB text", "/encoded/gzip/1000000", Status.SUCCESS),
    ("gzip 8 MB text (cut)", "/encoded/gzip/8000000", Status.SUCCESS),
    ("gzip bomb 1 GiB", f"/encoded/gzip/{GiB}?fill=zeros", Status.SUCCESS),
    ("deflate bomb 1 GiB", f"/encoded/deflate/{GiB}?fill=zeros", Status.SUCCESS),
    ("gzip, gzip 2 GiB", f"/encoded/gzip,gzip/{2 * GiB}?fill=zeros", Status.ERROR),
    ("br", "/encoded/br/1000000", Status.ERROR),
]


def test_a_workers_peak_memory_stays_within_the_cap(
    store: Store, target: Target, capped_process: HtqProcess
) -> None:
    pid = capped_process.pid
    warm = enqueue(store, url=f"{target.url}/text/1000")
    assert done(store, warm) is Status.SUCCESS
    for _, path, _ in CASES:  # built once here, not while the worker is measured
        if path.startswith("/encoded/"):
            codings, size = path.split("/")[2:4]
            encoded(codings, int(size.split("?")[0]), "zeros" if "zeros" in path else "text")
    baseline = peak_kib(pid)
    bound = baseline + (2 * MiB + 20 * MiB) // 1024
    peaks: dict[str, int] = {}
    for name, path, status in CASES:
        reset_peak(pid)
        uuid = enqueue(store, url=f"{target.url}{path}", timeout=30)
        assert done(store, uuid, timeout=60) is status, store.response(uuid).resource
        peaks[name] = peak_kib(pid)
    figures = {name: f"{(peak - baseline) / 1024:+.1f} MiB" for name, peak in peaks.items()}
    print(f"worker peak over an idle {baseline / 1024:.1f} MiB, cap 1 MiB: {figures}")
    assert all(peak <= bound for peak in peaks.values()), (baseline, peaks)


# -- a cancel racing a retry ---------------------------------------------------------------------


BACKOFF = {"min": 0.4, "max": 0.8, "factor": 1}


def test_a_canceled_request_is_never_tried_again(
    store: Store, target: Target, config: WorkerConfig
) -> None:
    """Each attempt times out (0.3 s), the next comes 0.4 to 0.8 s later. Canceled in its
    backoff, no attempt follows; canceled during an attempt, the target gets a DELETE naming
    that attempt, and no attempt after it."""
    with Worker(replace(config, threads=2)):
        found = [cancel_once(store, target, run, in_backoff=run % 2 == 0) for run in range(10)]
    assert found.count(Status.QUEUED) >= 3 and found.count(Status.PENDING) >= 3, found


def cancel_once(store: Store, target: Target, run: int, *, in_backoff: bool) -> Status | None:
    path = f"/delay/30/run{run}"
    uuid = enqueue(store, url=f"{target.url}{path}", timeout=0.3, retries=5, backoff=BACKOFF)
    if in_backoff:
        assert wait_for(lambda: attempts(store, uuid) >= 1 and is_queued(store, uuid))
    else:
        assert wait_for(lambda: len(sent(target, path)) >= 2)
    found = store.cancel(uuid)
    assert found in (Status.QUEUED, Status.PENDING), found
    tried = attempts(store, uuid)
    if found is Status.PENDING:
        delete = target.wait_for_delete(path, 5)
        assert delete is not None
        assert delete.headers["Htq-Attempt"] == str(tried)
        assert delete.headers["Htq-Request-Id"] == uuid

    def tried_again() -> bool:
        return any(int(r.headers["Htq-Attempt"]) > tried for r in sent(target, path))

    # A next attempt would come within the longest backoff: none may.
    assert not wait_for(tried_again, BACKOFF["max"] + 0.2), f"run {run}: tried again"
    numbers = [int(r.headers["Htq-Attempt"]) for r in sent(target, path)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= tried - 1
    if found is Status.QUEUED:
        assert target.wait_for_delete(path, 0) is None, "nothing was in flight to cancel"
    assert store.status(uuid) is Status.CANCELED
    return found


def sent(target: Target, path: str) -> list[Any]:
    return [r for r in target.requests if r.path == path and r.method == "GET"]


def is_queued(store: Store, uuid: str) -> bool:
    return wait_for_status(store, uuid, frozenset({Status.QUEUED}), timeout=0) is Status.QUEUED


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True

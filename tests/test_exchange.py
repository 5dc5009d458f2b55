"""Sending one request, what it costs and what it tells: JSON's escapes measured in one pass, no
work a send does not use, a refusal by the outbound guard told from a failure to connect."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from types import FrameType
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from htq.config import OutboundConfig
from htq.models import validate_request
from htq.outbound import Outbound
from htq.store import Claim
from htq.worker._exchange import (
    _escapes_to_more_than_double,
    refused_by_guard,
    send,
    send_delete,
)
from htq.worker._in_flight import InFlight
from htq.worker._transport import InterruptibleTransport
from tests.support.target import Target

MiB = 1 << 20


def guard() -> Outbound:
    """The outbound guard of a worker with the default options."""
    return Outbound.of(OutboundConfig(), "redis://127.0.0.1:1")


# -- text that JSON would store more than twice as large (stored base64) --------------------------


def json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2  # not the quotes


DECODED = st.characters(exclude_categories=["Cs"])  # a decoder makes no lone surrogate
ESCAPED_OR_NOT = st.sampled_from(list('\x00\x01\x07\x08\t\n\x0b\x0c\r\x1f"\\ a\x7fé€😀'))


@settings(derandomize=True, max_examples=300)
@given(st.text(st.one_of(ESCAPED_OR_NOT, DECODED)), st.integers(1, 70_000))
@example("\x00", 1).via("a NUL is 6 bytes for 1")
@example("\x00" + "a" * 4, 1).via("exactly twice: not more")
def test_more_than_double_is_what_json_writes(text: str, repeat: int) -> None:
    for body in (text, text * (repeat // max(len(text), 1))):  # the second, over many slices
        double = 2 * len(body.encode())
        assert _escapes_to_more_than_double(body) is (json_size(body) > double), body[:40]


# -- the hot path: what a request does not pay for ------------------------------------------------


def called(work: Any) -> set[str]:
    """The functions (qualified names) that `work()` calls on this thread."""
    names: set[str] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            names.add(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return names


def test_a_send_pays_only_for_what_it_uses(target: Target) -> None:
    """Sending is held to its deadline by `begin` alone (no `within` block, as the DELETE after
    a cancel needs); the request's Accept-Encoding is read only for an encoding htq keeps."""
    in_flight = InFlight()
    spec = validate_request({"url": f"{target.url}/encoded/gzip/1000", "timeout": 5})
    with InterruptibleTransport(in_flight, trust_env=False, outbound=guard()) as transport:
        in_flight.begin(Claim("u", "token", 1, spec), spec.timeout)
        sent = called(lambda: send(transport, spec, "u", 1024))
        kept = replace(spec, url=f"{target.url}/encoded/br/1000", headers={"Accept-Encoding": "br"})
        sent_br = called(lambda: send(transport, kept, "u", 1024))
        in_flight.sent()
        in_flight.release()
        deleted = called(lambda: send_delete(transport, spec, "u"))
    assert "send" in sent and "InFlight.within" not in sent and "_accepted" not in sent
    assert "_accepted" in sent_br
    assert "InFlight.within" in deleted


def test_a_refusal_by_the_guard_is_told_from_a_failure_to_connect(target: Target) -> None:
    """Final (not tried again), for a request or a callback, by name or by address."""
    closed = Target().start()
    closed.stop()
    refusing = Outbound.of(OutboundConfig(deny=("refused.test", "127.0.0.2")), "redis://x:1")
    with InterruptibleTransport(InFlight(), trust_env=False, outbound=refusing) as transport:
        for url, refused in [
            ("http://refused.test/", True),
            (f"http://127.0.0.2:{target.port}/", True),
            (f"{closed.url}/", False),
        ]:
            with pytest.raises(httpx.ConnectError) as raised:
                transport.handle_request(httpx.Request("GET", url))
            assert refused_by_guard(raised.value) is refused, (url, raised.value)

"""Passwords of URLs never reach a log: the message, the traceback, whatever the password holds."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from htq.masking import MASK, MaskPasswords


class Captured(logging.StreamHandler[io.StringIO]):
    """A handler writing to a string, which keeps the records it could not format."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.failed: list[logging.LogRecord] = []

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed.append(record)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def logged(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, Captured]]:
    log = logging.getLogger(f"htq.test.{request.node.name}")
    handler = Captured()
    log.addHandler(handler)
    log.addFilter(MaskPasswords())
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log, handler
    log.removeHandler(handler)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:hunter2@127.0.0.1/ip", f"http://alice:{MASK}@127.0.0.1/ip"),
        ("http://alice:pa'ss@h/", f"http://alice:{MASK}@h/"),
        ('http://alice:pa"ss@h', f"http://alice:{MASK}@h"),
        ("https://alice:p@ss:w@h:8080?x", f"https://alice:{MASK}@h:8080?x"),
        ("http://alice@h/", "http://alice@h/"),
    ],
)
def test_a_urls_password_is_masked_whatever_it_holds(
    logged: tuple[logging.Logger, Captured], url: str, shown: str
) -> None:
    log, handler = logged
    log.info("sending to %s (%r)", url, url)
    password = url.split("://")[1].rpartition("@")[0].partition(":")[2]
    assert handler.text.startswith(f"sending to {shown} (")
    assert not password or password not in handler.text, handler.text


def test_a_bad_format_string_fails_in_the_handler_not_at_the_call(
    logged: tuple[logging.Logger, Captured],
) -> None:
    log, handler = logged
    log.info("%d requests", "no number")  # raised a TypeError here, in a sender thread
    assert [r.msg for r in handler.failed] == ["%d requests"]


def test_a_tracebacks_passwords_are_masked(logged: tuple[logging.Logger, Captured]) -> None:
    log, handler = logged
    try:
        raise ValueError("cannot reach http://alice:hunter2@h/")
    except ValueError:
        log.exception("sending failed")
    assert "hunter2" not in handler.text
    assert f"ValueError: cannot reach http://alice:{MASK}@h/" in handler.text

"""Waiting for a log record."""

from __future__ import annotations

import logging
import time

import pytest


def wait_for_record(
    caplog: pytest.LogCaptureFixture, text: str, timeout: float
) -> logging.LogRecord | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in caplog.records:
            if text in record.getMessage():
                return record
        time.sleep(0.02)
    return None

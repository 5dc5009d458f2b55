"""Celery's side of the `compare` scenario: the same requests, sent by a Celery worker.

    BENCH_CELERY_BROKER=redis://... BENCH_CELERY_BACKEND=redis://... \\
        python -m celery -A bench.celery_app worker --pool threads --concurrency 10

One task, `bench.send`, sends a GET the way htq's worker threads do (each thread its own
keep-alive httpx.Client) and returns what htq stores of a response: code, reason, headers and
body, kept by Celery's Redis result backend. The worker prints `ready 0` once it takes tasks.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx
from celery import Celery
from celery.signals import worker_ready

TASK = "bench.send"


def make_app(broker: str, backend: str) -> Celery:
    app = Celery("htq-bench", broker=broker, backend=backend)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_serializer="json",
        result_serializer="json",
    )
    app.task(name=TASK)(send)
    return app


_local = threading.local()


def send(url: str) -> dict[str, Any]:
    client: httpx.Client | None = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(timeout=30)
    response = client.get(url)
    return {
        "code": response.status_code,
        "reason": response.reason_phrase,
        "headers": dict(response.headers),
        "data": response.text,
    }


def _announce(**_: Any) -> None:
    print("ready 0", flush=True)


worker_ready.connect(_announce, weak=False)


# The worker's command line imports this module: its broker and backend come from the
# environment (the harness sets both to databases of its own Valkey).
app = make_app(
    os.environ.get("BENCH_CELERY_BROKER", "memory://"),
    os.environ.get("BENCH_CELERY_BACKEND", "cache+memory://"),
)

"""`htq worker`: connect, start the threads, run until SIGTERM/SIGINT, stop gracefully."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from htq.config import WorkerConfig
from htq.store import unreachable, worker_store
from htq.worker._worker import Worker

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def work(config: WorkerConfig) -> int:
    """Run a worker until a signal; 0 after a clean stop, 1 if Redis cannot be reached at start."""
    problem = unreachable(config.store.redis_url)
    if problem is not None:
        print(f"htq worker: {problem}", file=sys.stderr)
        return 1
    store = worker_store(config.store)
    worker = Worker(config, store)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            worker.force()  # a second signal: hand in-flight requests back now
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    try:
        # Said before the threads start: with requests queued, they log their first at once.
        print(f"Started {config.threads} workers...", flush=True)
        worker.start()
        while not stop.wait(0.5):
            pass
        worker.stop(config.grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    return 0

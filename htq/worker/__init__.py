"""The worker: threads that send queued requests, store their responses and honour cancels."""

from htq.worker._main import work
from htq.worker._worker import Worker

__all__ = ["Worker", "work"]

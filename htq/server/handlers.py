"""Thin REST handlers of one request, and the service's own: parse, make one store call,
render. Errors always answer JSON (see base.py); `/` is in queue.py."""

from __future__ import annotations

import asyncio
import json

from htq.errors import (
    Conflict,
    NotFound,
    StoreUnavailable,
)
from htq.masking import masked
from htq.models import TERMINAL, Status
from htq.server.base import BaseHandler

MAX_WAIT = 86400.0


class RequestHandler(BaseHandler):
    """`/<uuid>/`: the request resource; DELETE cancels it."""

    async def get(self, uuid: str) -> None:
        resource = await self.store.get(self.known_uuid(uuid))
        if resource is not None and not self.settings["show_secrets"]:
            resource = masked(resource)
        if resource is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.set_links(self.links(uuid))
        self.write_json(resource)

    async def delete(self, uuid: str) -> None:
        if await self.store.cancel(self.known_uuid(uuid)) is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.no_content()


class AttemptsHandler(BaseHandler):
    """`/<uuid>/attempts/`: every attempt to send the request, oldest first (no bodies)."""

    async def get(self, uuid: str) -> None:
        attempts = await self.store.attempts(self.known_uuid(uuid))
        if attempts is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.set_links({"request": self.request_url(uuid)})
        self.write_json(attempts)


class RetryHandler(BaseHandler):
    """`/<uuid>/retry/`: POST queues a finished request again, as a new attempt (303)."""

    async def post(self, uuid: str) -> None:
        found = await self.store.requeue(self.known_uuid(uuid))
        if found.status is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        if found.replaced_by is not None:
            raise Conflict(
                f"Request {uuid} was replaced by {found.replaced_by} (same `id`): retry that one."
            )
        if found.held_by is not None:
            raise Conflict(
                f"Request {found.held_by} holds this request's `id` now and is not finished: "
                "cancel it first, or let it finish."
            )
        if not found.done:
            raise Conflict(f"Request {uuid} is {found.status}: only a finished request is retried.")
        self.clear_header("Content-Type")
        self.set_header("Location", self.request_url(uuid))
        self.set_status(303)
        self.finish()


class StatusHandler(BaseHandler):
    """`/<uuid>/status/`: the lightweight status."""

    async def get(self, uuid: str) -> None:
        status = await self.store.status(self.known_uuid(uuid))
        if status is None:
            raise NotFound(f"No request {uuid} (never queued, or expired).")
        self.finish(json.dumps({"status": str(status)}))


class ResponseHandler(BaseHandler):
    """`/<uuid>/response/`: blocks until the request is done (`?wait=` bounds it).

    DELETE removes the stored response to free space; the request keeps its status.
    """

    _waiting: asyncio.Task[bool] | None = None

    async def get(self, uuid: str) -> None:
        self.known_uuid(uuid)
        wait = self.query_number("wait", None, 0, MAX_WAIT)
        answer = await self.store.response(uuid)
        if answer.status is not None and answer.status not in TERMINAL:
            self._waiting = asyncio.ensure_future(self.store.waiters.wait(uuid, wait))
            try:
                done = await self._waiting
            except asyncio.CancelledError:
                return  # the client went away
            if not done:
                self.write_json({"status": str(await self.store.status(uuid))}, 202)
                return
            answer = await self.store.response(uuid)
        if answer.raw is None:
            raise NotFound(_no_response(uuid, answer.status))
        self.set_links(
            {"request": self.request_url(uuid), "self": self.request_url(uuid, "response")}
        )
        self.write_raw_json(answer.raw)

    def on_connection_close(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()

    async def delete(self, uuid: str) -> None:
        if not await self.store.delete_response(self.known_uuid(uuid)):
            status = await self.store.status(uuid)
            raise NotFound(_no_response(uuid, status))
        self.no_content()


def _no_response(uuid: str, status: Status | None) -> str:
    if status is None:
        return f"No request {uuid} (never queued, or expired)."
    if status is Status.CANCELED:
        return f"Request {uuid} was canceled; it has no response."
    if status in TERMINAL:
        return f"The response of request {uuid} was deleted."
    return f"Request {uuid} is {status}; it has no response yet."


class StatsHandler(BaseHandler):
    """`/stats`: counts per status and the queue's depth, for dashboards and the TUI."""

    async def get(self) -> None:
        stats = await self.store.stats()
        stats["waiters"] = self.store.waiters.count
        self.write_json(stats)


class HealthHandler(BaseHandler):
    """`/healthz`: 200 while the server can reach Redis, 503 otherwise; needs no token."""

    public = True

    async def get(self) -> None:
        if not await self.store.ping():
            raise StoreUnavailable("The store (Redis) did not answer PING.")
        self.write_json({"status": "ok"})


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        super().prepare()
        raise NotFound(f"No such resource: {self.request.path}")

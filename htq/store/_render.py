"""Resources as the API shows them, from the hash fields a store operation read."""

from __future__ import annotations

import json
from typing import Any

from htq.models import Status, request_resource
from htq.store._keys import text
from htq.store._values import Claim


def render(uuid: str, parts: dict[str, Any]) -> dict[str, Any] | None:
    """The request resource from the hash fields read (a listing reads fewer); None if the
    request is gone (never queued, or expired since it was listed)."""
    if parts.get("status") is None:
        return None
    time_ms = parts.get("time")
    resource = request_resource(
        uuid,
        text(parts["status"]),
        int(time_ms) if time_ms is not None else None,
        parts.get("request"),
        parts.get("headers"),
        parts.get("data"),
        text(parts.get("replaced_by")) or None,
    )
    if parts.get("summary"):
        resource["result"] = json.loads(parts["summary"])
    attempts = int(parts.get("attempts") or 0)
    if attempts > 1 or (parts.get("due") and attempts):  # retried: how far it got
        resource["attempts"] = attempts
    if parts.get("due"):
        resource["due"] = int(parts["due"])
    if parts.get("callback_result"):
        resource["callback_result"] = json.loads(parts["callback_result"])
    return resource


def attempt_entry(claim: Claim, response: dict[str, Any]) -> dict[str, Any]:
    """One attempt, as `GET /<uuid>/attempts/` lists it (no body, no headers)."""
    elapsed = response.get("elapsed") or 0.0
    entry: dict[str, Any] = {
        "attempt": claim.attempts,
        "start": round(response["time"] - elapsed),
        "elapsed": elapsed,
        "outcome": response["status"],
    }
    if response["status"] == Status.SUCCESS:
        entry.update(code=response["code"], reason=response["reason"])
    else:
        entry["message"] = response.get("message")
    return entry


def attempts_of(parts: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The recorded attempts, and the last one from what the request holds if not recorded."""
    status = Status(text(parts["status"])) if parts.get("status") else None
    if status is None:
        return None
    history = parts.get("history")
    entries = [json.loads(line) for line in text(history).split("\n")] if history else []
    attempts = int(parts.get("attempts") or 0)
    if attempts > int(parts.get("recorded") or 0):
        claimed = parts.get("claimed")
        entry: dict[str, Any] = {"attempt": attempts, "start": int(claimed) if claimed else None}
        summary = json.loads(parts["summary"]) if parts.get("summary") else None
        if status is Status.PENDING:
            entry["outcome"] = "pending"
        elif summary is not None and status is not Status.CANCELED:
            summary.pop("deleted", None)
            entry.update(outcome=str(status), **summary)
        elif status is Status.CANCELED:
            entry["outcome"] = "canceled"
        else:
            entry = {}
        if entry:
            entries.append(entry)
    return entries


def summarize(response: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a response a listing shows: code and reason, or the message."""
    if response["status"] == Status.SUCCESS:
        return {
            "code": response["code"],
            "reason": response["reason"],
            "elapsed": response["elapsed"],
        }
    return {"message": response.get("message"), "elapsed": response.get("elapsed")}

"""The document's delivery schemas: retries, scheduling and callbacks as a request description
gives them, and as the request resource shows them (with its attempts, its due time, its
callback's result), and the attempt history."""

from __future__ import annotations

from htq.delivery import DEFAULT_RETRY_ON, MAX_BACKOFF, MAX_DELAY, MAX_RETRIES, Backoff
from htq.models import Status
from htq.server.openapi._refs import Json, schema_ref

#: What `delivery.py` accepts, where it has no name for it.
MAX_RETRY_ON = 100
MIN_BACKOFF = 0.01
MAX_FACTOR = 10
MAX_INSTANT = 2**53 - 1  # epoch ms: JSON's largest exact integer
MAX_INSTANT_TEXT = 64
#: An attempt's outcomes: how it ended, or `pending` while it is under way.
OUTCOMES = (Status.SUCCESS, Status.ERROR, Status.TIMEOUT, Status.CANCELED, Status.PENDING)


def _backoff_properties(limits: bool) -> Json:
    bounds: dict[str, tuple[float, float]] = {
        "min": (MIN_BACKOFF, MAX_BACKOFF),
        "max": (MIN_BACKOFF, MAX_BACKOFF),
        "factor": (1, MAX_FACTOR),
    }
    texts = {
        "min": "The shortest wait between two attempts (a `Retry-After` too is at least this).",
        "max": "The most seconds between two attempts (a `Retry-After` too is capped at it).",
        "factor": "What each wait is multiplied by.",
    }
    return {
        name: {"type": "number", "description": text}
        | ({"minimum": bounds[name][0], "maximum": bounds[name][1]} if limits else {})
        for name, text in texts.items()
    }


def description_properties(url: Json) -> Json:
    """The delivery fields of a request description (`url`: the schema of `url`, which the
    callbacks share). None is needed: without them a request is sent once, as by the spec."""
    default = Backoff()
    callback = {**url, "type": ["string", "null"]}
    return {
        "retries": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": MAX_RETRIES,
            "default": 0,
            "description": "Further attempts after the first. An attempt is tried again while "
            "attempts remain if it got no response (`error`, `timeout`) or a response whose "
            "code is in `retry_on`. Meanwhile the request stays `queued`, with `due` and "
            "`attempts` in its resource, and holds no worker; `DELETE` cancels it. The final "
            "status and response are the last attempt's. Each attempt of a request with "
            "retries carries `Htq-Request-Id` (the request's uuid) and `Htq-Attempt` (its "
            "number, from 1), so that a target can tell a repeat.",
        },
        "retry_on": {
            "type": ["array", "null"],
            "maxItems": MAX_RETRY_ON,
            "items": {"type": "integer", "minimum": 100, "maximum": 599},
            "default": list(DEFAULT_RETRY_ON),
            "description": "The response codes that count as a failure: tried again while "
            "`retries` remain; the last attempt's is kept as the request's `success` (a "
            "response came) but calls `failure_callback`, not `callback`.",
        },
        "backoff": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": _backoff_properties(limits=True),
            "default": default.to_json(),
            "description": "The wait between attempts, in seconds: `min * factor ** (n - 1)` "
            "after attempt n plus a random part of up to half as much again (so that requests "
            "failing together spread out), always within `min` and `max` (`max` must be at "
            "least `min`). A `Retry-After` on a `429` or `503` (seconds or an HTTP date) is "
            "waited instead, kept within `min` and `max`. Fields left out keep their default.",
        },
        "delay": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": MAX_DELAY,
            "description": "Seconds to wait before sending the request: it is `queued` with "
            "its `due` time meanwhile, never sent early, and sent promptly once due. Not with "
            "`not_before`.",
        },
        "not_before": {
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_INSTANT},
                {"type": "string", "minLength": 1, "maxLength": MAX_INSTANT_TEXT},
                {"type": "null"},
            ],
            "examples": ["2026-12-01T09:00:00Z", 1796115600000],
            "description": "When to send the request, at the earliest: epoch milliseconds, or "
            f"an ISO-8601 date and time with its zone (at most {MAX_INSTANT_TEXT} characters), "
            f"at most {MAX_DELAY / 86400:g} days ahead; a time past sends it at once. As "
            "`delay`, which it may not come with (`422`, `field`: `not_before`).",
        },
        "callback": {
            **callback,
            "description": "A URL that gets a `POST` of the response resource (the JSON of "
            "`GET /{uuid}/response/`) once the request succeeds: a response whose code is not "
            "in `retry_on`. Checked as `url` is (the outbound guard too). A callback is tried a "
            "few times with backoff, its outcome is kept as the request's `callback_result`, and "
            "it never changes the request's status.",
        },
        "failure_callback": {
            **callback,
            "description": "As `callback`, once the request fails after its last attempt (no "
            "response, or a code in `retry_on`): the `POST` holds the response resource (the "
            "error and its message, or the last response). A canceled request calls neither.",
        },
    }


#: Neither may come with a number in the other (the server says `field`: `not_before`).
DELAY_OR_NOT_BEFORE: Json = {
    "not": {
        "required": ["delay", "not_before"],
        "properties": {"delay": {"type": "number"}, "not_before": {"type": ["integer", "string"]}},
    }
}


def resource_properties() -> Json:
    """What the request resource (and a listed request) shows of its delivery."""
    given = "As given, shown only when it is not the default."
    return {
        "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES, "description": given},
        "retry_on": {
            "type": "array",
            "items": {"type": "integer"},
            "description": f"{given} Sorted, without repeats.",
        },
        "backoff": {
            "type": "object",
            "required": ["min", "max", "factor"],
            "additionalProperties": False,
            "properties": _backoff_properties(limits=False),
            "description": f"{given} The defaults fill the fields left out.",
        },
        "callback": {"type": "string", "description": "As given."},
        "failure_callback": {"type": "string", "description": "As given."},
        "attempts": {
            "type": "integer",
            "minimum": 1,
            "description": "The attempts made: shown once there was more than one, and while "
            "the request waits for its next.",
        },
        "due": {
            "type": "integer",
            "description": "When the request is to be sent (epoch ms): while it waits for its "
            "`delay` or `not_before`, or for its next attempt. It is `queued` meanwhile.",
        },
        "callback_result": schema_ref("CallbackResult"),
    }


def schemas() -> Json:
    return {"Attempt": _attempt(), "CallbackResult": _callback_result()}


def _attempt() -> Json:
    return {
        "type": "object",
        "description": "One attempt to send the request. `code` and `reason` come with a "
        "`success`, `message` with an `error` or a `timeout`; an attempt under way (`pending`) "
        "or canceled has neither, nor `elapsed`. Bodies are not repeated: the last attempt's "
        "response is at `/{uuid}/response/`.",
        "required": ["attempt", "outcome"],
        "additionalProperties": False,
        "properties": {
            "attempt": {"type": "integer", "minimum": 1, "description": "Its number, from 1."},
            "start": {
                "type": ["integer", "null"],
                "description": "When it began (epoch ms); `null` when that is not known.",
            },
            "elapsed": {"type": "number", "minimum": 0, "description": "Milliseconds."},
            "outcome": {"type": "string", "enum": [str(outcome) for outcome in OUTCOMES]},
            "code": {"type": "integer", "minimum": 100, "maximum": 999},
            "reason": {"type": "string"},
            "message": {"type": "string", "description": "What went wrong, for a person."},
        },
        "allOf": [
            {
                "if": {"properties": {"outcome": {"const": str(Status.SUCCESS)}}},
                "then": {"required": ["code", "reason"]},
            },
            {
                "if": {
                    "properties": {"outcome": {"enum": [str(Status.ERROR), str(Status.TIMEOUT)]}}
                },
                "then": {"required": ["message"]},
            },
        ],
    }


def _callback_result() -> Json:
    return {
        "type": "object",
        "description": "How the request's callback went: the URL called, how many times it "
        "was tried, and the last try's response code or error.",
        "required": ["url", "attempts"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string"},
            "attempts": {"type": "integer", "minimum": 1},
            "code": {"type": "integer", "description": "The callback target's response code."},
            "error": {"type": "string", "description": "Why no response came."},
        },
        "oneOf": [{"required": ["code"]}, {"required": ["error"]}],
    }

"""A request resource as the curl command that sends the same request."""

from __future__ import annotations

import shlex
from typing import Any

from htq.models import RequestSpec


def curl_command(resource: dict[str, Any]) -> str:
    """One line a person can paste: method, headers, body and the request's timeout."""
    spec = RequestSpec.from_resource(resource)
    parts = ["curl"]
    body = spec.body()
    inferred = "POST" if body is not None else "GET"
    if spec.method == "HEAD":
        parts.append("--head")
    elif spec.method != inferred:
        parts += ["-X", spec.method]
    for name, value in spec.send_headers().items():
        parts += ["-H", f"{name}: {value}"]
    if body is not None:
        parts += ["--data-raw", body.decode("utf-8", errors="replace")]
    parts += ["--max-time", f"{spec.timeout:g}", spec.url]
    return shlex.join(parts)

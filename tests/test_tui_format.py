"""The TUI's pure helpers: the curl command, header lines, ages and durations."""

from __future__ import annotations

import shlex
import subprocess
import sys

import httpx
import pytest

from htq.models import RequestSpec, Status
from htq.tui import format as fmt
from htq.tui.api import _error
from htq.tui.curl import curl_command
from htq.tui.screens.submit import _body


def resource(**fields: object) -> dict[str, object]:
    spec = RequestSpec.from_resource(
        {"url": "http://x.test/a", "method": "GET", "headers": {}, "data": None, "timeout": 60}
        | fields
    )
    return spec.to_resource("u", 0, Status.QUEUED)


def test_curl_for_a_plain_get() -> None:
    assert curl_command(resource()) == "curl --max-time 60 http://x.test/a"


def test_curl_sends_json_data_with_its_content_type() -> None:
    command = shlex.split(curl_command(resource(method="POST", data={"a": [1, "it's"]})))
    assert command == [
        "curl", "-H", "Content-Type: application/json", "--data-raw", '{"a":[1,"it\'s"]}',
        "--max-time", "60", "http://x.test/a",
    ]  # fmt: skip


def test_curl_names_a_method_curl_would_not_infer() -> None:
    assert curl_command(resource(method="DELETE", timeout=2.5)).startswith("curl -X DELETE ")
    assert curl_command(resource(method="PUT", data="x")).startswith("curl -X PUT ")
    assert curl_command(resource(method="HEAD")).startswith("curl --head ")


def test_header_lines() -> None:
    assert fmt.parse_headers("Accept: a/b\n\n X-Two :  2 : 3 ") == {
        "Accept": "a/b",
        "X-Two": "2 : 3",
    }
    with pytest.raises(ValueError, match="Line 2"):
        fmt.parse_headers("Accept: a\nno colon")


def test_ages_and_durations() -> None:
    now = 1_000_000.0
    assert [fmt.age((now - s) * 1000, now) for s in (0, 59, 60, 3600 * 5, 86400 * 3)] == [
        "0s", "59s", "1m", "5h", "3d",
    ]  # fmt: skip
    assert [fmt.elapsed(ms) for ms in (0.4, 83.4, 1234, 90_000)] == [
        "0 ms", "83 ms", "1.23 s", "1.5 min",
    ]  # fmt: skip
    assert fmt.elapsed(None) == fmt.age(None, now) == ""


def test_the_form_sends_json_containers_as_json_and_the_rest_as_text() -> None:
    assert _body('{"a": 1}') == {"a": 1}
    assert _body("[1, 2]") == [1, 2]
    assert _body("42") == "42"
    assert _body("{not json") == "{not json"


def test_an_api_error_carries_the_field_the_server_named() -> None:
    invalid = {"error": "invalid", "message": "`timeout` must be...", "field": "timeout"}
    assert _error(httpx.Response(422, json=invalid)).field == "timeout"
    malformed = {"error": "malformed", "message": "The body is not valid JSON"}
    assert _error(httpx.Response(400, json=malformed)).field is None


def test_the_tui_never_imports_redis_or_the_store() -> None:
    code = (
        "import sys, htq.tui, htq.tui.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis' or m == 'htq.store'))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"

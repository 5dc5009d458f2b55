"""The TUI's pure helpers: the curl command, header lines, ages and durations."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from htq.masking import MASK
from htq.models import RequestSpec, Status
from htq.tui import format as fmt
from htq.tui.api import _error
from htq.tui.curl import curl_command
from htq.tui.screens.submit import _body
from tests.support.target import Target


def resource(**fields: object) -> dict[str, object]:
    spec = RequestSpec.from_resource(
        {"url": "http://x.test/a", "method": "GET", "headers": {}, "data": None, "timeout": 60}
        | fields
    )
    return spec.to_resource("u", 0, Status.QUEUED)


def curl(**fields: object) -> str:
    return curl_command(resource(**fields)).text


def test_curl_for_a_plain_get() -> None:
    assert curl() == "curl --max-time 60 --globoff http://x.test/a"


def test_curl_sends_json_data_with_its_content_type() -> None:
    command = shlex.split(curl(method="POST", data={"a": [1, "it's"]}))
    assert command == [
        "curl", "-H", "Content-Type: application/json", "--data-raw", '{"a":[1,"it\'s"]}',
        "--max-time", "60", "--globoff", "http://x.test/a",
    ]  # fmt: skip


def test_curl_names_a_method_curl_would_not_infer() -> None:
    assert curl(method="DELETE", timeout=2.5).startswith("curl -X DELETE ")
    assert curl(method="PUT", data="x").startswith("curl -X PUT ")
    assert curl(method="HEAD").startswith("curl --head ")


def test_curl_never_copies_a_masked_credential_but_a_variable_to_set() -> None:
    shown = resource(
        url=f"http://alice:{MASK}@x.test/a",
        headers={"Authorization": MASK, "X-Api-Key": MASK, "Accept": "*/*"},
    )
    command = curl_command(shown)
    assert '-H "Authorization: Bearer $TOKEN"' in command.text
    assert '-H "X-Api-Key: $X_API_KEY"' in command.text
    assert MASK not in command.text and "HTQ_TOKEN" not in command.text
    assert command.variables == ("TOKEN", "X_API_KEY", "PASSWORD")
    words = _words_as_bash_sees(command.text, TOKEN="t0k", X_API_KEY="k", PASSWORD="pw")
    assert words[1:5] == ["-H", "Authorization: Bearer t0k", "-H", "X-Api-Key: k"]
    assert words[-1] == "http://alice:pw@x.test/a"


#: A URL, a header and a body with everything a shell or curl's globbing would act on.
HOSTILE_URL = '/echo/a[1-5]/{a,b}/it\'s/"$HOME"/$(id)/`id`/%20?q=[x]&r={y}#z'
HOSTILE_TEXT = 'it\'s "$HOME" $(id) `id` \\ [1-5] {a,b} ; & | > ! *'


def _words_as_bash_sees(command: str, **env: str) -> list[str]:
    """The words bash would pass to curl for `command` (run by bash, with `env`)."""
    shown = subprocess.run(
        ["bash", "-c", f'curl() {{ printf "%s\\0" curl "$@"; }}; {command}'],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    return shown.stdout.decode().split("\0")[:-1]


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_curl_quotes_everything_for_the_shell() -> None:
    command = curl(
        url=f"http://x.test{HOSTILE_URL}",
        method="POST",
        headers={"X-Odd": HOSTILE_TEXT},
        data=HOSTILE_TEXT,
    )
    subprocess.run(["bash", "-n", "-c", command], check=True)
    assert _words_as_bash_sees(command) == [
        "curl", "-H", f"X-Odd: {HOSTILE_TEXT}", "--data-raw", HOSTILE_TEXT,
        "--max-time", "60", "--globoff", f"http://x.test{HOSTILE_URL}",
    ]  # fmt: skip


@pytest.mark.skipif(not shutil.which("curl") or not shutil.which("bash"), reason="needs curl")
def test_the_copied_command_sends_one_request_as_described() -> None:
    with Target() as target:
        command = curl(
            url=f"{target.url}{HOSTILE_URL}",
            method="PUT",
            headers={"X-Odd": HOSTILE_TEXT, "Authorization": MASK},
            data=HOSTILE_TEXT,
        )
        subprocess.run(
            ["bash", "-c", command + " --silent --output /dev/null"],
            check=True,
            env={"PATH": os.environ["PATH"], "TOKEN": "t0k"},
        )
        assert len(target.requests) == 1, "one request, not one per glob"
        sent = target.requests[0]
    assert sent.method == "PUT"
    assert sent.path == urlsplit(HOSTILE_URL).path  # the target records no query
    assert sent.headers["X-Odd"] == HOSTILE_TEXT
    assert sent.headers["Authorization"] == "Bearer t0k"
    assert sent.body == HOSTILE_TEXT.encode()


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

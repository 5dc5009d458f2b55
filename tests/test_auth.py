"""Tokens: with any set, every call but `/healthz` needs `Authorization: Bearer <token>`; how
a server gets them (--token, HTQ_TOKENS, --token-file) and how the TUI sends one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textual.widgets import Static

from htq.cli import token_option, tui_config
from htq.config import StoreConfig, TuiConfig
from htq.errors import ConfigError
from htq.store import Store
from htq.tui import create_app
from htq.tui.screens.main import MainScreen
from tests.support.api import post, queue
from tests.support.processes import HtqProcess, htq, start_server
from tests.support.redis_server import ValkeyProcess, free_port
from tests.support.server import ServerThread, server_config_for

TOKEN = "s3cret-token-for-tests-0001"
OTHER = "another-token-for-tests-0002"
URL = "http://127.0.0.1:9/"
APP = "https://app.example"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def guarded(store_config: StoreConfig, store: Store) -> Iterator[ServerThread]:
    server = ServerThread(
        server_config_for(store_config, tokens=(TOKEN, OTHER), cors_origins=(APP,))
    )
    yield server
    server.stop()


def unauthorized(answer: httpx.Response, error: str | None) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized" and answer.json()["message"]
    challenge = 'Bearer realm="htq"' + (f', error="{error}"' if error else "")
    assert answer.headers["WWW-Authenticate"] == challenge


def test_every_endpoint_needs_a_token(guarded: ServerThread, store: Store) -> None:
    uuid = "00000000-0000-4000-8000-000000000000"
    with httpx.Client(base_url=guarded.url) as api:
        for method, path in [
            ("GET", "/"),
            ("GET", "/stats"),
            ("GET", f"/{uuid}/"),
            ("GET", f"/{uuid}/status/"),
            ("GET", f"/{uuid}/response/"),
            ("DELETE", f"/{uuid}/"),
            ("DELETE", f"/{uuid}/response/"),
            ("GET", "/no/such/thing"),
        ]:
            unauthorized(api.request(method, path), None)
        unauthorized(post(api, {"url": URL}), None)
        assert store.redis.zcard(store.keys.all) == 0, "refused, so nothing is queued"


def test_a_wrong_token_or_scheme_is_refused(guarded: ServerThread) -> None:
    with httpx.Client(base_url=guarded.url) as api:
        unauthorized(api.get("/", headers=bearer(TOKEN + "x")), "invalid_token")
        unauthorized(api.get("/", headers=bearer(TOKEN[:-1])), "invalid_token")
        unauthorized(api.get("/", headers={"Authorization": f"Basic {TOKEN}"}), "invalid_request")
        unauthorized(api.get("/", headers={"Authorization": "Bearer"}), "invalid_request")
        unauthorized(
            api.get("/", headers={"Authorization": "Bearer t\xe9st".encode("latin-1")}),
            "invalid_token",
        )


def test_any_of_the_tokens_opens_every_endpoint(guarded: ServerThread) -> None:
    for token in (TOKEN, OTHER):
        with httpx.Client(base_url=guarded.url, headers=bearer(token)) as api:
            uuid = queue(api, {"url": URL})
            assert api.get(f"/{uuid}/").json()["status"] == "queued"
            assert api.get(f"/{uuid}/status/").json() == {"status": "queued"}
            assert api.get("/").status_code == 200
            assert api.get("/stats").status_code == 200
            assert api.delete(f"/{uuid}/").status_code == 204
        # the scheme's case does not matter (RFC 9110: it is case-insensitive)
        answer = httpx.get(f"{guarded.url}stats", headers={"Authorization": f"bearer {token}"})
        assert answer.status_code == 200


def test_a_refused_post_body_is_read_before_the_401(guarded: ServerThread) -> None:
    """The client reads the answer, not a connection reset, and may go on with the next call."""
    big = json.dumps({"url": URL, "data": "x" * 2_000_000})
    with httpx.Client(base_url=guarded.url) as api:
        unauthorized(post(api, json.loads(big)), None)
        assert api.get("/stats", headers=bearer(TOKEN)).status_code == 200


def test_healthz_needs_no_token(guarded: ServerThread) -> None:
    answer = httpx.get(f"{guarded.url}healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_healthz_says_when_redis_is_away(store_config: StoreConfig) -> None:
    valkey = ValkeyProcess().start()
    server = ServerThread(server_config_for(StoreConfig(valkey.url, store_config.prefix)))
    try:
        assert httpx.get(f"{server.url}healthz").status_code == 200
        valkey.stop()
        answer = httpx.get(f"{server.url}healthz", timeout=15)
        assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
        valkey.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}healthz", timeout=15).status_code != 200:
            assert time.monotonic() < deadline, "healthz stayed 503 after Redis came back"
            time.sleep(0.1)
    finally:
        server.stop()
        valkey.close()


def test_a_preflight_needs_no_token_and_a_refusal_is_readable_by_the_page(
    guarded: ServerThread,
) -> None:
    """Browsers send no Authorization on a preflight; the page may read why it was refused."""
    with httpx.Client(base_url=guarded.url) as api:
        preflight = api.options(
            "/",
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        answer = api.get("/", headers={"Origin": APP})
        unauthorized(answer, None)
        assert answer.headers["Access-Control-Allow-Origin"] == APP
        assert api.get("/", headers={"Origin": APP, **bearer(TOKEN)}).status_code == 200


def test_without_tokens_no_token_is_asked(api: httpx.Client) -> None:
    assert api.get("/stats").status_code == 200
    assert api.get("/stats", headers=bearer("whatever-it-is-it-is-ignored")).status_code == 200


# -- how the server is given its tokens --------------------------------------------------------


def test_token_repeats_on_the_command_line(redis_url: str) -> None:
    server = start_server(redis_url, "authtest", "--token", TOKEN, f"--token={OTHER}")
    try:
        for token in (TOKEN, OTHER):
            assert httpx.get(f"{server.url}stats", headers=bearer(token)).status_code == 200
        assert httpx.get(f"{server.url}stats").status_code == 401
        assert "warning" not in server.output()
    finally:
        assert server.stop() == 0


def test_tokens_from_the_environment_and_a_file(redis_url: str, tmp_path: Path) -> None:
    listed = tmp_path / "tokens"
    listed.write_text(f"# the deploy bot\n{TOKEN}\n\n  {OTHER}  \n")
    third = "a-third-token-from-the-env-03"
    port = free_port()
    args = ["server", "--host", "127.0.0.1", "--port", str(port), "--redis", redis_url]
    env = {"HTQ_TOKENS": f"{third}, {TOKEN}", "HTQ_TOKEN_FILE": str(listed)}
    server = HtqProcess([*args, "--prefix", "authtest"], " * Running on", env=env)
    try:
        url = f"http://127.0.0.1:{port}/stats"
        for token in (TOKEN, OTHER, third):
            assert httpx.get(url, headers=bearer(token)).status_code == 200
        assert httpx.get(url, headers=bearer("# the deploy bot")).status_code == 401
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--token", "short"], {}, "--token: a token must be at least 16 characters"),
        (["--token", "has spaces in it, many"], {}, "--token: a token is letters, digits"),
        ([], {"HTQ_TOKENS": "tiny"}, "HTQ_TOKENS: a token must be at least 16"),
        (["--token-file", "/nonexistent/tokens"], {}, "--token-file: cannot read /nonexistent"),
        (["--token"], {}, "--token requires a value"),
        (["--token", ""], {}, "--token: the token is empty"),
        (["--token="], {}, "--token: the token is empty"),
        ([], {"HTQ_TOKEN": ""}, "HTQ_TOKEN is empty"),
        ([], {"HTQ_TOKEN": "  "}, "HTQ_TOKEN is empty"),
        ([], {"HTQ_TOKENS": ""}, "HTQ_TOKENS is empty"),
        ([], {"HTQ_TOKENS": " , "}, "HTQ_TOKENS is empty"),
    ],
)
def test_a_bad_token_is_one_clear_line(args: list[str], env: dict[str, str], message: str) -> None:
    result = htq("server", "--port", str(free_port()), *args, env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "short" not in result.stderr.replace("--token short", ""), "a secret is not echoed"


def test_an_empty_token_never_turns_the_server_s_auth_off() -> None:
    """`HTQ_TOKEN=$UNSET_VARIABLE` must not start an open server: it says so and names it."""
    result = htq("server", "--port", str(free_port()), env={"HTQ_TOKEN": ""})
    assert result.returncode == 2 and "a token is letters" not in result.stderr
    assert "unset HTQ_TOKEN" in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_htq_token_is_no_token_for_the_tui(value: str) -> None:
    assert token_option("tui", [], value) == []
    assert token_option("tui", [], TOKEN) == [TOKEN]
    with pytest.raises(ConfigError, match="--token: the token is empty"):
        tui_config_of(token_option("tui", [""], None))


def tui_config_of(given: list[str]) -> TuiConfig:
    return tui_config({"--url": "http://localhost:5000/", "--interval": "1", "--token": given})


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nobody yet\n\n")
    result = htq("server", "--token-file", str(empty))
    assert result.returncode == 2 and "holds no token" in result.stderr


def test_the_server_warns_when_reachable_from_others_without_a_token(redis_url: str) -> None:
    port = free_port()
    args = ["server", "--host", "0.0.0.0", "--port", str(port), "--redis", redis_url]
    server = HtqProcess([*args, "--prefix", "authtest"], " * Running on")
    try:
        server.wait_for("no token is required")
        assert "--token" in server.output()
    finally:
        assert server.stop() == 0
    guarded = HtqProcess([*args, "--prefix", "authtest", "--token", TOKEN], " * Running on")
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert answer.status_code == 200
        assert "warning" not in guarded.output()
    finally:
        assert guarded.stop() == 0


# -- the TUI ------------------------------------------------------------------------------------


async def test_the_tui_sends_its_token(guarded: ServerThread) -> None:
    with httpx.Client(base_url=guarded.url, headers=bearer(TOKEN)) as api:
        uuid = queue(api, {"url": URL})
    app = create_app(TuiConfig(url=guarded.url, interval=0.2, token=OTHER))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen_stack[0]
        assert isinstance(screen, MainScreen)
        deadline = time.monotonic() + 10
        while uuid not in screen.table.items:
            assert time.monotonic() < deadline, "the TUI did not list the request"
            await pilot.pause(0.05)


@pytest.mark.parametrize(("token", "says"), [(None, "needs a token"), (OTHER + "x", "refused")])
async def test_the_tui_says_when_its_token_is_missing_or_wrong(
    guarded: ServerThread, token: str | None, says: str
) -> None:
    app = create_app(TuiConfig(url=guarded.url, interval=0.2, token=token))
    async with app.run_test(size=(80, 24)) as pilot:
        waiting = app.screen.query_one("#waiting", Static)
        deadline = time.monotonic() + 10
        while says not in str(waiting.render()):
            assert time.monotonic() < deadline, str(waiting.render())
            await pilot.pause(0.05)
        assert "HTQ_TOKEN" in str(waiting.render()) and waiting.display

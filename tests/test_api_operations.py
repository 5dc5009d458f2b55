"""Running the API: retention, a proxy in front, Redis going away and coming back."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from htq.config import StoreConfig
from htq.store import Store
from tests.support.api import TUTORIAL_URL, finish, pings, post, queue, until
from tests.support.redis_server import ValkeyProcess
from tests.support.server import ServerThread, server_config_for

# -- retention, proxies, Redis down --------------------------------------------------------


def test_finished_requests_expire_after_the_ttl(store_config: StoreConfig) -> None:
    config = StoreConfig(store_config.redis_url, store_config.prefix, ttl=1)
    store = Store(config)
    server = ServerThread(server_config_for(config))
    try:
        with httpx.Client(base_url=server.url) as api:
            uuid = queue(api, {"url": TUTORIAL_URL})
            finish(store, uuid)
            assert api.get(f"/{uuid}/").status_code == 200
            until(lambda: api.get(f"/{uuid}/").status_code == 404, timeout=5)
            store.purge()
            assert api.get("/?status=all").json() == []
            assert store.stats()["total"] == 0
    finally:
        server.stop()
        store.close()


def test_xheaders_make_links_use_the_proxy_address(store_config: StoreConfig, store: Store) -> None:
    server = ServerThread(server_config_for(store_config, xheaders=True))
    try:
        response = httpx.post(
            server.url,
            content=json.dumps({"url": TUTORIAL_URL}),
            headers={
                "Content-Type": "application/json",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "htq.example.com",
            },
        )
        assert response.headers["Location"].startswith("https://htq.example.com/")
    finally:
        server.stop()


def test_redis_down_is_503_and_the_server_recovers(
    store_config: StoreConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    valkey = ValkeyProcess().start()
    config = StoreConfig(valkey.url, store_config.prefix)
    server = ServerThread(server_config_for(config))
    try:
        with httpx.Client(base_url=server.url, timeout=15) as api:
            uuid = queue(api, {"url": TUTORIAL_URL})
            valkey.stop()
            for response in (
                post(api, {"url": TUTORIAL_URL}),
                api.get(f"/{uuid}/"),
                api.get("/"),
                api.get("/stats"),
                api.delete(f"/{uuid}/"),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "unavailable"
                assert ".." not in response.json()["message"]
            valkey.start()
            until(lambda: post(api, {"url": TUTORIAL_URL}).status_code == 303, timeout=10)
            assert api.get(f"/{uuid}/status/").json() == {"status": "queued"}, "data kept"
        said = [r.getMessage() for r in caplog.records if "Redis" in r.getMessage()]
        assert len(said) == 2, f"one line as the outage starts, one as it ends: {said}"
        assert said[0].startswith("Redis unreachable") and said[1].startswith("Redis is back")
    finally:
        server.stop()
        valkey.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_no_503_once_a_restarted_redis_answers(store_config: StoreConfig, how: str) -> None:
    """Connections pooled before the restart are stale: none of them may cost a client a 503."""
    valkey = ValkeyProcess().start()
    config = StoreConfig(valkey.url, store_config.prefix)
    server = ServerThread(server_config_for(config))
    try:
        with httpx.Client(base_url=server.url, timeout=15) as api:
            uuids = [queue(api, {"url": TUTORIAL_URL}) for _ in range(3)]
            for uuid in uuids:  # every kind of call, so each kind of connection is pooled
                assert api.get(f"/{uuid}/").status_code == 200
            assert api.get("/").status_code == 200 and api.get("/stats").status_code == 200
            assert api.get(f"/{uuids[0]}/response/?wait=0.01").status_code == 202
            valkey.kill() if how == "kill" else valkey.stop()
            valkey.start()
            probe = Store(config)
            until(lambda: pings(probe), timeout=10)
            probe.close()
            for answer in (
                post(api, {"url": TUTORIAL_URL}),
                api.get(f"/{uuids[0]}/"),
                api.get(f"/{uuids[0]}/status/"),
                api.get("/?status=all"),
                api.get("/stats"),
            ):
                assert answer.status_code in (200, 303), (answer.request.url, answer.text)
            assert api.get(f"/{uuids[1]}/response/?wait=0.01").status_code == 202
            assert api.delete(f"/{uuids[2]}/").status_code == 204
    finally:
        server.stop()
        valkey.close()

"""What screens need from the app, as a Protocol: screens depend on this, never on the app class
(the app composes the screens, not the reverse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from textual.app import App

from htq.config import TuiConfig
from htq.tui.api import ApiClient, ApiError


class HtqContext(Protocol):
    """The app as a screen sees it: the server's API, the clock, and where to report how a call
    to the server went."""

    config: TuiConfig
    api: ApiClient
    clock: Callable[[], float]
    stats: dict[str, Any] | None  # the server's last counts; None until it first answered

    def reached(self, stats: dict[str, Any] | None = None) -> None:
        """The server answered (with its stats, when they were asked for)."""

    def failed(self, error: ApiError) -> None:
        """A call to the server failed."""


def context_of(app: App[Any]) -> HtqContext:
    """The running app, seen through `HtqContext` (the HtqApp that `htq tui` runs)."""
    return cast(HtqContext, app)  # mypy checks that HtqApp is one (see htq/tui/app.py)

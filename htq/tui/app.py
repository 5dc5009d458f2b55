"""The Textual app: holds the API client, the clock and the connection state every screen shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from htq.config import TuiConfig
from htq.tui.api import ApiClient, ApiError, Unreachable
from htq.tui.commands import ActionCommands, declared_bindings
from htq.tui.context import HtqContext
from htq.tui.screens.detail import DetailScreen
from htq.tui.screens.help import HelpScreen, Section
from htq.tui.screens.main import MainScreen
from htq.tui.screens.submit import SubmitScreen
from htq.tui.widgets.request_table import RequestTable
from htq.tui.widgets.server_bar import Connection, Reach

Clock = Callable[[], float]

#: Table keys worth listing in the help (the rest are DataTable's cell-cursor keys).
_TABLE_ACTIONS = {"cursor_up", "cursor_down", "page_up", "page_down"}

# Textual's own keys, listed in the help too.
_NEXT_FIELD = Binding("tab,shift+tab", "focus", "Next/previous field")
_PALETTE = Binding("ctrl+p", "palette", "Command palette", tooltip="Find any action by name")


class HtqApp(App[int]):
    """Watch and drive an htq server. Talks only to its REST API."""

    CSS_PATH = "htq.tcss"
    TITLE = "htq"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {ActionCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?", tooltip="List every key"),
        Binding("q", "quit", "Quit", tooltip="Leave htq tui"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="Leave htq tui"),
    ]

    connection: reactive[Connection] = reactive(Connection)
    stats: reactive[dict[str, Any] | None] = reactive(None)

    def __init__(
        self,
        config: TuiConfig,
        *,
        clock: Clock = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.api = ApiClient(config.url, token=config.token, transport=transport)
        self._refusal = ""  # the last error toasted, so a failing poll toasts once, not per tick

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    async def on_unmount(self) -> None:
        await self.api.aclose()

    def reached(self, stats: dict[str, Any] | None = None) -> None:
        """The server answered: say so if it had been lost."""
        if self.connection.reach not in (Reach.CONNECTING, Reach.ONLINE):
            self.notify(f"{self.config.url} answers again.", title="Back online", markup=False)
        self.connection = Connection(Reach.ONLINE)
        self._refusal = ""
        if stats is not None:
            self.stats = stats

    def failed(self, error: ApiError) -> None:
        """A call failed: the header says how; a toast only when the state changes."""
        if isinstance(error, Unreachable):
            connection = Connection(Reach.UNREACHABLE, error.message)
            title, advice = "Server unreachable", "Start one with `make run` or `htq up`"
        elif error.store_down:
            connection = Connection(Reach.STORE_DOWN, error.message)
            title, advice = "Redis unavailable", ""
        elif error.unauthorized:
            refused = "token refused" if self.config.token is not None else "token needed"
            connection = Connection(Reach.UNAUTHORIZED, refused)
            title, advice = refused.capitalize(), ""
        else:
            if error.message != self._refusal:
                self._refusal = error.message
                self.notify(
                    error.message, title="The server refused", severity="error", markup=False
                )
            return
        if connection.reach is not self.connection.reach:
            kept = "The last data stays on screen" if self.stats is not None else advice
            self.notify(
                f"{error.message.rstrip('.')}. {kept + '; ' if kept else ''}"
                f"retrying every {self.config.interval:g} s.",
                title=title,
                severity="warning",
                markup=False,
            )
        self.connection = connection

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(help_sections(type(self.screen))))


def help_sections(current: type[Screen[Any]]) -> list[Section]:
    """Every key, the current screen's first."""
    table = [b for b in declared_bindings(RequestTable, own=False) if b.action in _TABLE_ACTIONS]
    sections: list[Section] = [
        ("Request list", [*declared_bindings(MainScreen), *table]),
        ("Request detail", declared_bindings(DetailScreen)),
        ("New request form", [*declared_bindings(SubmitScreen), _NEXT_FIELD]),
        ("Everywhere", [*declared_bindings(HtqApp), _PALETTE]),
    ]
    order = {MainScreen: 0, DetailScreen: 1, SubmitScreen: 2}
    first = order.get(current, 0)
    return [sections[first], *(s for i, s in enumerate(sections) if i != first)]


def create_app(
    config: TuiConfig,
    *,
    clock: Clock = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HtqApp:
    """The app, as `htq tui` runs it; tests pass a fixed clock (and may route the HTTP)."""
    return HtqApp(config, clock=clock, transport=transport)


def run_tui(config: TuiConfig) -> int:
    app = create_app(config)
    app.run()
    return app.return_code or 0


def _is_a_context(app: HtqApp) -> HtqContext:
    """Never called: mypy checks here that the app gives screens what they need."""
    return app

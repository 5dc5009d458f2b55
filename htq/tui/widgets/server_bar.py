"""The top line: which server, whether it answers, and how many requests it holds."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static


class Reach(enum.Enum):
    """How the last call to the server went."""

    CONNECTING = "connecting"
    ONLINE = "online"
    STORE_DOWN = "store down"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class Connection:
    reach: Reach = Reach.CONNECTING
    detail: str = ""


_REACH_MARKUP = {
    Reach.CONNECTING: "[$text-muted]◌ connecting…[/]",
    Reach.ONLINE: "[$text-success]● online[/]",
    Reach.STORE_DOWN: "[$text-warning]● Redis unavailable[/] [$text-muted]· retrying[/]",
    Reach.UNREACHABLE: "[$text-error]● unreachable[/] [$text-muted]($detail) · retrying[/]",
    Reach.UNAUTHORIZED: "[$text-error]● $detail[/] [$text-muted]· retrying[/]",
}


class ServerBar(Static):
    """`htq  http://host:port/  ● online   1,234 requests · queue 3 · in flight 2`, shortened
    from the right to fit (the counts first: the status tabs show them too)."""

    connection: reactive[Connection] = reactive(Connection, always_update=True)
    stats: reactive[dict[str, Any] | None] = reactive(None, always_update=True)

    def __init__(self, url: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.url = url

    def on_mount(self) -> None:
        # The app holds the state every screen's bar shows.
        self.watch(self.app, "connection", self._set_connection)
        self.watch(self.app, "stats", self._set_stats)

    def _set_connection(self, connection: Connection) -> None:
        self.connection = connection

    def _set_stats(self, stats: dict[str, Any] | None) -> None:
        self.stats = stats

    def render(self) -> Content:
        reach = Content.from_markup(
            _REACH_MARKUP[self.connection.reach], detail=self.connection.detail
        )
        head = Content.assemble(
            Content.from_markup("[b $accent]htq[/]  $url  ", url=self.url), reach
        )
        if self.stats is None:
            return head
        queue = f"queue {self.stats.get('queue_depth', 0):,}"
        queue += f" · in flight {self.stats.get('in_flight', 0):,}"
        fuller = [f"{_requests(self.stats.get('total', 0))} · {queue}", queue]
        width = self.content_region.width
        for counts in fuller:
            line = Content.assemble(head, Content.styled(f"   {counts}", "$text-muted"))
            if line.cell_length <= width:
                return line
        return head


def _requests(count: int) -> str:
    return f"{count:,} request" if count == 1 else f"{count:,} requests"

"""The status filter: `1 all  2 queued  3 pending ...`, each with its count, clickable."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from htq.models import Status
from htq.tui.format import STATUS_STYLE

#: The filters in key order: key 1 is every status, then the statuses in their life order.
FILTERS: tuple[Status | None, ...] = (None, *Status.__members__.values())


def filter_name(status: Status | None) -> str:
    return str(status) if status else "all"


class StatusTabs(Static):
    """Shows the active status filter and the count of each status (from /stats)."""

    active: reactive[Status | None] = reactive(None)
    counts: reactive[dict[str, Any]] = reactive(dict, always_update=True)

    def render(self) -> Content:
        parts: list[Content | str] = []
        for number, status in enumerate(FILTERS, start=1):
            name = filter_name(status)
            count = self.counts.get("total") if status is None else self.counts.get(str(status))
            tab = Content.assemble(
                " ",
                (str(number), "$text-muted"),
                " ",
                (name, f"ansi_{STATUS_STYLE[status]}" if status else ""),
                ("" if count is None else f" {count:,}", "$text-muted"),
                " ",
            ).stylize(f"@click=screen.filter_status('{name}')")
            parts.append(tab.stylize("reverse") if status == self.active else tab)
        return Content.assemble(*parts)

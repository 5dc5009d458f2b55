"""Every key, grouped by where it works; built from the bindings so it never goes stale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "escape": "esc",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "pageup": "pgup",
    "pagedown": "pgdn",
    "up": "↑",
    "down": "↓",
}

Section = tuple[str, Sequence[Binding]]


def keys_text(bindings: Sequence[Binding]) -> str:
    """`↑/k` for every key bound to the same action (all of them: the footer shows one)."""
    names: list[str] = []
    for binding in bindings:
        for key in binding.key.split(","):
            name = _KEY_NAMES.get(key.strip(), key.strip())
            if name not in names:
                names.append(name)
    return "/".join(names)


def help_table(sections: Sequence[Section]) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column("key", style="bold", no_wrap=True, min_width=10)
    table.add_column("does", no_wrap=True)
    table.add_column("detail", style="dim", ratio=1)
    for number, (title, bindings) in enumerate(sections):
        if number:
            table.add_row("", "", "")
        table.add_row(Text(title, style="bold underline"), "", "")
        by_action: dict[str, list[Binding]] = {}
        for binding in bindings:
            by_action.setdefault(binding.action, []).append(binding)
        for group in by_action.values():
            table.add_row(keys_text(group), group[0].description, group[0].tooltip)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", key_display="esc"),
    ]

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Keys  [dim](esc closes; ctrl+p finds any action by name)[/]", id="title")
            with VerticalScroll(id="help-body"):
                yield Static(help_table(self.sections), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)

"""What a person can do, from one source (the BINDINGS): help rows and command-palette entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

#: App actions the palette already offers through Textual's system commands.
_SYSTEM_ACTIONS = frozenset({"quit", "command_palette"})


def declared_bindings(cls: type[Any], *, own: bool = True) -> list[Binding]:
    """The described Binding objects a class and its bases declare, base first, later keys
    winning; `own` keeps only htq's (not Textual's focus and copy keys)."""
    found: dict[str, Binding] = {}
    for klass in reversed(cls.__mro__):
        if own and not klass.__module__.startswith("htq."):
            continue
        for binding in klass.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.description:
                found[binding.key] = binding
    return list(found.values())


def key_label(binding: Binding) -> str:
    return binding.key_display or binding.key


class ActionCommands(Provider):
    """Every described key of the current screen (and the app) as a palette command."""

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        seen: set[str] = set()
        runners: list[tuple[type[Any], Callable[[str], Awaitable[Any]]]] = [
            (type(self.screen), self.screen.run_action),
            (type(self.app), self.app.run_action),
        ]
        for cls, run in runners:
            for binding in declared_bindings(cls):
                if binding.action in _SYSTEM_ACTIONS or binding.action in seen:
                    continue
                seen.add(binding.action)
                help_text = f"{binding.tooltip}  ({key_label(binding)})".strip()
                yield binding.description, help_text, partial(run, binding.action)

    async def discover(self) -> Hits:
        for title, help_text, command in self._commands():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._commands():
            score = matcher.match(f"{title} {help_text}")
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, text=title, help=help_text)

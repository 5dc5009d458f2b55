"""The layering DESIGN.md promises, read from the source's imports: a rule here fails loudly.

- Only the store speaks to Redis: no other module imports redis or hiredis.
- The TUI is a REST client: it imports neither the store, the server nor the worker.
- The server and the worker never import each other (`htq up` composes them).
- The TUI's screens and widgets never import its app (the app composes them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "htq"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, whether at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: htq imports absolutely (the rules read names)"
            names.add(node.module or "")
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def offenders(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        module: sorted(name for name in imported if within(name, *forbidden))
        for module, imported in MODULES.items()
        if within(module, *importers)
    }
    return {module: names for module, names in found.items() if names}


def test_the_rules_see_the_whole_package() -> None:
    assert {"htq.store", "htq.server", "htq.worker", "htq.tui.app", "htq.up"} <= set(MODULES)
    assert "redis" in MODULES["htq.store._wire"], "the reader finds imports (or every rule passes)"


def test_only_the_store_imports_redis() -> None:
    found = {
        module: sorted(name for name in imported if within(name, "redis", "hiredis"))
        for module, imported in MODULES.items()
        if not within(module, "htq.store")
    }
    assert {module: names for module, names in found.items() if names} == {}


@pytest.mark.parametrize(
    ("importers", "forbidden"),
    [
        (("htq.tui",), ("htq.store", "htq.server", "htq.worker", "htq.up")),
        (("htq.server",), ("htq.worker", "htq.up")),
        (("htq.worker",), ("htq.server", "htq.up")),
        (("htq.tui.screens", "htq.tui.widgets"), ("htq.tui.app",)),  # they see HtqContext
    ],
)
def test_layers_import_only_what_they_may(
    importers: tuple[str, ...], forbidden: tuple[str, ...]
) -> None:
    assert offenders(importers, forbidden) == {}

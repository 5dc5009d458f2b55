"""The README's code blocks, so that tests run what a reader copies."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.processes import ROOT

README = ROOT / "README.md"
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    language: str  # "bash", "python", "text" or ""
    text: str  # without the fences and without the list item's indentation


def blocks(section: str | None = None) -> list[Block]:
    """The fenced blocks of README.md, in order; of one `## ` section (by title) if given."""
    text = README.read_text()
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end >= 0 else len(text)]
    found = []
    for match in _FENCE.finditer(text):
        indent, language, body = match.groups()
        lines = [line.removeprefix(indent) for line in body.splitlines()]
        found.append(Block(language, "\n".join(lines) + "\n"))
    return found

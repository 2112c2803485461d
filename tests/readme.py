"""The README as a newcomer reads it: sections, their shell commands and their Python snippets.

Tests that run what the README shows take it from here, by the words a command starts with, so the
command they run is the one printed; ``tests/test_readme_commands.py`` checks that every command is taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)
_COMMENT = re.compile(r"\s+#\s.*$")  # the README's comments follow a command after spaces


@dataclass(frozen=True)
class Block:
    """One fenced block and the heading of the section it is in."""

    section: str
    language: str
    text: str


def blocks() -> list[Block]:
    text = README.read_text()
    found: list[Block] = []
    for match in _FENCE.finditer(text):
        headings = re.findall(r"^#+ (.+)$", text[: match.start()], flags=re.MULTILINE)
        found.append(Block(section=headings[-1] if headings else "", language=match.group(1), text=match.group(2)))
    return found


def shell_commands(block: Block) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments dropped, as a shell reads them."""
    joined = block.text.replace("\\\n", " ")
    lines = (_COMMENT.sub("", line).strip() for line in joined.splitlines())
    return [re.sub(r"\s+", " ", line) for line in lines if line and not line.startswith("#")]


def all_commands() -> list[str]:
    return [command for block in blocks() if block.language == "bash" for command in shell_commands(block)]


def command(start: str) -> str:
    """The README command ``start`` (it may be shown more than once), else the one that starts with it."""
    if start in all_commands():
        return start
    matching = [found for found in all_commands() if found.startswith(start)]
    assert len(matching) == 1, f"the README has {len(matching)} commands starting {start!r}: {matching}"
    return matching[0]


def section(title: str) -> list[Block]:
    """The blocks of the section titled ``title``, in order."""
    found = [block for block in blocks() if block.section == title]
    assert found, f"the README has no section {title!r} with code in it"
    return found

"""What the documentation shows as code, and where each example lives.

Pages (README.md and docs/**/*.md) show code in fenced blocks. In docs/ a block of code is
only ever an include of an example file (`--8<-- "examples/x.py"`, the pymdownx snippets
syntax), and a README block is a verbatim copy of one; the example files are what the tests
run. The one exception is a block of `make` commands, which the tests check with `make -n`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)[^\n]*\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"$')
SECTION_MARK = re.compile(r"^\s*(#|//) --8<-- \[(start|end):[\w-]+\]\s*$")
NOT_CODE = {"text", "mermaid"}  # output, trees and diagrams: nothing to run


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def lines(self) -> list[str]:
        return [line.strip() for line in self.body.splitlines() if line.strip()]

    def includes(self) -> list[tuple[str, str | None]]:
        """(path, section) of each snippet line, or [] when the block is not only includes."""
        found = [SNIPPET.match(line) for line in self.lines()]
        if not found or not all(found):
            return []
        return [(m["path"], m["section"]) for m in found if m]

    def commands(self) -> list[str]:
        """The lines that are not only a comment."""
        return [line for line in self.lines() if not line.startswith("#")]

    def is_make_only(self) -> bool:
        return bool(self.commands()) and all(c.startswith("make ") for c in self.commands())


def pages() -> list[Path]:
    """README.md and every Markdown page of the site (through its symlinked folders)."""
    found = [README]
    for folder, _, files in os.walk(DOCS, followlinks=True):
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".md")]
    return found


def blocks(page: Path) -> Iterator[Block]:
    text = page.read_text()
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield Block(page, line, match["lang"], match["body"])


def example_files() -> list[Path]:
    """Every example the pages may include: each one is run by tests/docs."""
    found = [p for p in (ROOT / "examples").rglob("*") if p.is_file()]
    found += sorted((ROOT / "client_js" / "examples").glob("*.js"))
    return sorted(p for p in found if p.name != "__init__.py" and "__pycache__" not in p.parts)


def section(path: Path, name: str | None) -> str:
    """The text a snippet include shows: the whole file, or one marked section of it."""
    lines = path.read_text().splitlines(keepends=True)
    if name is not None:
        start = next(i for i, s in enumerate(lines) if f"[start:{name}]" in s)
        end = next(i for i, s in enumerate(lines) if f"[end:{name}]" in s)
        lines = lines[start + 1 : end]
    return "".join(s for s in lines if not SECTION_MARK.match(s))


def shown_texts() -> dict[str, Path]:
    """Every text a README block may copy: each example file and each marked section."""
    shown: dict[str, Path] = {}
    for path in example_files():
        shown[section(path, None).strip()] = path
        for name in re.findall(r"--8<-- \[start:([\w-]+)\]", path.read_text()):
            shown[section(path, name).strip()] = path
    return shown

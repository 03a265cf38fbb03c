"""The pages show only code the tests run, and their tables say what the code says."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import urllib.request

from server.cli.parser import build_parser
from tests.docs.catalog import (
    DOCS,
    NOT_CODE,
    README,
    ROOT,
    Block,
    blocks,
    example_files,
    pages,
    shown_texts,
)
from tests.docs.conftest import DocsServer

README_MAX_LINES = 200


def _all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


def test_the_readme_is_a_front_page() -> None:
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def test_every_code_block_is_an_example_the_tests_run() -> None:
    examples = {str(p.relative_to(ROOT)) for p in example_files()}
    shown = shown_texts()
    problems = []
    for block in _all_blocks():
        if block.lang in NOT_CODE or block.is_make_only():
            continue
        if not block.lang:
            problems.append(f"{block.where}: say what the block is (```text for output)")
        elif block.page == README:
            if block.body.strip() not in shown:
                problems.append(f"{block.where}: not a copy of an example file (or section)")
        elif not block.includes():
            problems.append(f"{block.where}: inline {block.lang}; make it a file under examples/")
        else:
            problems += [
                f"{block.where}: includes {path}, which no test runs"
                for path, _ in block.includes()
                if path not in examples
            ]
    assert not problems, "\n".join(problems)


def test_make_commands_in_the_pages_are_targets() -> None:
    commands = {line for b in _all_blocks() if b.is_make_only() for line in b.commands()}
    assert commands
    for command in commands:
        words = shlex.split(command, comments=True)
        done = subprocess.run([*words, "-n"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}: {done.stderr}"


def test_the_benchmark_tables_are_generated() -> None:
    """The tables between the bench: markers (docs and README) are what benchmarks.readme
    writes from the committed results, untouched by hand."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.readme", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _table(page: str) -> list[list[str]]:
    rows = []
    for line in (DOCS / page).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `"):
            rows.append([c.strip("`") for c in cells])
    return rows


def test_the_limits_page_gives_each_flags_default() -> None:
    defaults = vars(build_parser().parse_args(["serve"]))
    rows = _table("server/limits.md")
    assert rows
    for flag, default, *_ in rows:
        assert str(defaults[flag.removeprefix("--").replace("-", "_")]) == default, flag


def test_the_metrics_page_lists_every_family_the_server_exports(docs_server: DocsServer) -> None:
    with urllib.request.urlopen(f"{docs_server.process.http_url}/metrics", timeout=20) as response:
        exposition = response.read().decode()
    families = re.findall(r"^# TYPE (performer_\w+) (\w+)$", exposition, re.M)
    exported = {
        name if kind != "counter" or name.endswith("_total") else name + "_total"
        for name, kind in families
        if not name.endswith("_created")  # the client library's own timestamps
    }
    documented = {row[0] for row in _table("operating/metrics.md")}
    assert exported == documented


def test_every_page_is_one_click_from_the_readme_and_the_home_page() -> None:
    """A reader finds any feature in two clicks: the front page, then the page."""
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r"(\S+\.md)\s*$", config[config.index("\nnav:") :], re.M)
    reached_from_their_section = ("benchmarks/results/", "reliability/runs/")
    wanted = [p for p in nav if p != "index.md" and not p.startswith(reached_from_their_section)]
    assert len(wanted) > 30
    readme_text, home = README.read_text(), (DOCS / "index.md").read_text()
    assert [p for p in wanted if f"](docs/{p})" not in readme_text] == []
    assert [p for p in wanted if f"]({p})" not in home] == []


def test_the_readmes_links_and_pictures_exist() -> None:
    """The README is not part of the site, so mkdocs does not check it: this does."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"\w+://", t)]
    assert len(local) > 30
    assert [t for t in local if not (ROOT / t).exists()] == []

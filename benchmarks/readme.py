"""Write the docs' benchmark tables (and the README's one) from ``results/results.jsonl``.

``python -m benchmarks.readme`` (also run at the end of every ``python -m
benchmarks``) replaces what lies between the ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` markers in docs/benchmarks/index.md (every table) and
README.md (the comparison on its front page); the rest of each page is left
alone. Every number comes from the JSON lines, never typed by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.paths import REPO, RESULTS
from benchmarks.report import read_jsonl
from benchmarks.servers import KINDS

Row = dict[str, Any]
PAGES = (REPO / "docs" / "benchmarks" / "index.md", REPO / "README.md")
PEER_ORDER = [
    "ours",
    "ours-asyncio",
    "y-websocket",
    "y-websocket-leveldb",
    "hocuspocus",
    "hocuspocus-sqlite",
    "pycrdt",
    "pycrdt-asyncio",
]


def _num(row: Row | None, key: str, decimals: int = 0, scale: float = 1.0) -> str:
    if row is None:
        return "–"
    if not row["ok"]:
        return "FAILED"
    stat = row["metrics"].get(key)
    if not isinstance(stat, dict) or "median" not in stat:
        return "n/a"
    return f"{stat['median'] * scale:,.{decimals}f}"


def _find(rows: list[Row], workload: str, server: str, case: str | None = None) -> Row | None:
    for r in rows:
        if r["workload"] == workload and r["server"] == server:
            if case is None or r["case"] == case:
                return r
    return None


def _servers(rows: list[Row], workloads: set[str]) -> list[str]:
    present = {r["server"] for r in rows if r["workload"] in workloads}
    return [s for s in PEER_ORDER if s in present]


def _table(head: str, servers: list[str], lines: list[tuple[str, Callable[[str], str]]]) -> str:
    out = [f"| {head} | " + " | ".join(KINDS[s].label for s in servers) + " |"]
    out.append("|---|" + "---:|" * len(servers))
    for title, cell in lines:
        out.append(f"| {title} | " + " | ".join(cell(s) for s in servers) + " |")
    return "\n".join(out)


def _when(rows: list[Row]) -> str:
    dates = sorted({r["machine"]["date"] for r in rows})
    commits = sorted({str(r["machine"].get("ours")) for r in rows if r["server"] == "ours"})
    m = rows[0]["machine"]
    loops = sorted({str(r["machine"].get("loop") or "see RESULTS.md") for r in rows})
    span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    arch = f" ({m['arch']})" if m.get("arch") else ""
    other = [_f(r, "other_busy_cores") for r in rows if r["metrics"].get("other_busy_cores")]
    load = (
        f" Other work on the machine used {min(other):.1f}-{max(other):.1f} cores during these "
        "runs (recorded per run)."
        if other
        else ""
    )
    return (
        f"Measured {span}; Performer at {', '.join(commits)}; {m.get('nproc') or m['cores']}-core "
        f"{m['cpu']}{arch}, shared with the load generator; "
        f"Python servers' event loop: {', '.join(loops)}.{load}"
    )


def classic(rows: list[Row]) -> str:
    """The A-F summary: one line per case, one column per server."""
    mine = [r for r in rows if r["workload"] in "ABCDEF"]
    if not mine:
        return "(no results for A-F yet)"
    servers = _servers(mine, set("ABCDEF"))

    def trio(workload: str, case: str) -> Callable[[str], str]:
        def cell(s: str) -> str:
            r = _find(mine, workload, s, case)
            if r is None or not r["ok"]:
                return _num(r, "x")
            return " · ".join(
                [
                    _num(r, "updates_per_s"),
                    _num(r, "p99_ms", _dec(r, "p99_ms")),
                    _num(r, "server_cpu_us_per_update"),
                ]
            )

        return cell

    def cold(s: str) -> str:
        r = _find(mine, "C", s)
        if r is not None and not r["ok"] and (r["metrics"].get("sync_ms") or {}).get("median"):
            # joined live, then lost the room across the restart: say what came back
            live = _num({**r, "ok": True}, "sync_ms")
            return f"{live} · FAILED ({r['failures'][0].splitlines()[0]})"
        if r is None or not r["ok"]:
            return _num(r, "x")
        after = f"{_num(r, 'restart_sync_ms')} (kept)" if KINDS[s].durable else "not kept [1]"
        return f"{_num(r, 'sync_ms')} · {after}"

    def memory(s: str) -> str:
        r = _find(mine, "D", s)
        if r is not None and not r["ok"]:
            return "FAILED (crashed)"
        return f"{_num(r, 'rss_loaded_mib')} · {_num(r, 'rss_idle_mib')}"

    def ingest(case: str) -> Callable[[str], str]:
        def cell(s: str) -> str:
            r = _find(mine, "E", s, case)
            how = _ingest_kind(s)
            return f"{_num(r, 'updates_per_s')} ({how})" if r and r["ok"] else _num(r, "x")

        return cell

    lines: list[tuple[str, Callable[[str], str]]] = [
        (
            "A: 1 room x 10 clients, updates/s · p99 ms · server CPU µs/update",
            trio("A", "1 room x 10 clients, full speed"),
        ),
        ("A: 1 room x 50 clients, same", trio("A", "1 room x 50 clients, full speed")),
        (
            "A: 10 clients typing (20/s each), p99 ms",
            lambda s: _num(
                _find(mine, "A", s, "1 room x 10 clients, 20 updates/s each"), "p99_ms", 1
            ),
        ),
        ("B: 100 rooms x 2 clients, same", trio("B", "100 rooms x 2 clients, full speed")),
        ("C: join a room of 20,000 updates, ms · after a restart", cold),
        ("D: 1,000 rooms, RSS MiB loaded · idle", memory),
        ("E: 20 writers into 1 room, updates/s", ingest("1 room(s) x 20 writer(s) + 1 reader")),
        ("E: 100 rooms x 1 writer, updates/s", ingest("100 room(s) x 1 writer(s) + 1 reader")),
        (
            "F: 200 clients sending presence 10/s, server CPU %",
            lambda s: _num(_find(mine, "F", s), "server_cpu_pct"),
        ),
    ]
    notes = (
        "\n\n[1] By construction, not a measured failure: these peers are run without "
        "storage (y-websocket without `YPERSISTENCE`, Hocuspocus without a database "
        "extension, pycrdt-websocket without a YStore), so a restart starts them empty; "
        "the + LevelDB and + SQLite columns are the same peers persisting.\n\n"
        + _fsync_line(servers)
        + "\n\n"
        + _when(mine)
    )
    return _table("workload", servers, lines) + notes


def _ingest_kind(server: str) -> str:
    """E's note: ours acknowledges each durable write; the persisting peers store later."""
    kind = KINDS[server]
    if kind.base == "ours":
        return "durable, acknowledged"
    return "stored, unacknowledged" if kind.durable else "memory"


def _fsync_line(servers: list[str]) -> str:
    """Which columns keep edits on disk and when they fsync (generated, never typed)."""
    parts = [f"{KINDS[s].label}: {KINDS[s].fsync}" for s in servers]
    return "On disk and fsync: " + "; ".join(parts) + "."


def _dec(row: Row, key: str) -> int:
    """One decimal below 100, none above."""
    return 0 if _f(row, key) >= 100 else 1


def _f(row: Row, key: str) -> float:
    stat = row["metrics"].get(key)
    return float(stat["median"]) if isinstance(stat, dict) and "median" in stat else 0.0


def typists(rows: list[Row]) -> str:
    """T: one line per step (rooms), one column per server."""
    mine = [r for r in rows if r["workload"] == "T"]
    if not mine:
        return "(no results for T yet: `python -m benchmarks --workload T`)"
    servers = _servers(mine, {"T"})
    cases = list(dict.fromkeys(r["case"] for r in mine))

    def cell(case: str) -> Callable[[str], str]:
        def fmt(s: str) -> str:
            r = _find(mine, "T", s, case)
            if r is None:
                return "not run (stopped earlier)"
            if not r["ok"]:
                return "FAILED"
            text = (
                f"{_num(r, 'p50_ms', _dec(r, 'p50_ms'))} · {_num(r, 'p99_ms', _dec(r, 'p99_ms'))}"
                f" · {_num(r, 'server_cpu_pct')} % · {_num(r, 'server_cpu_us_per_update')}"
            )
            if (r["metrics"].get("client_bound") or {}).get("any"):
                text += " (client-bound)"
            return text

        return fmt

    def title(case: str) -> str:
        r = next(r for r in mine if r["case"] == case)
        rooms = int(_f(r, "rooms"))
        if case.startswith("1 busy room"):
            return "1 busy room, 10 clients x 20 edits/s"
        return f"{rooms} rooms, {3 * rooms} typists"

    lines = [(title(c), cell(c)) for c in cases]
    failed = [r for r in mine if not r["ok"]]
    check = (
        "Every step shown delivered every edit to every client (lost 0) and converged."
        if not failed
        else f"{len(failed)} step(s) FAILED (lost updates, divergence or errors): see RESULTS.md."
    )
    return (
        _table("p50 ms · p99 ms · server CPU % · CPU µs/edit", servers, lines)
        + f"\n\n{_fsync_line(servers)}\n\n{check} {_when(mine)}"
    )


def big_room(rows: list[Row]) -> str:
    """BIG: one line per measure, one column per server and document size."""
    mine = [r for r in rows if r["workload"] == "BIG"]
    if not mine:
        return "(no results for BIG yet: `python -m benchmarks --workload BIG`)"
    order = {s: i for i, s in enumerate(PEER_ORDER)}
    columns = sorted(mine, key=lambda r: (_doc_mb(r), order.get(r["server"], len(order))))

    def metric(key: str, decimals: int = 0, scale: float = 1.0) -> Callable[[Row], str]:
        return lambda r: _num(r, key, decimals, scale)

    def pair(a: str, b: str) -> Callable[[Row], str]:
        return lambda r: f"{_num(r, a, 1)} · {_num(r, b, 1)}"

    lines = [
        ("cold first sync (whole document), ms", metric("cold_complete_ms")),
        ("four clients joining at once, all complete, ms", metric("crowd_all_complete_ms")),
        ("small room p99 ms: before · during", pair("small_baseline_p99_ms", "small_p99_ms")),
        ("small room max latency during, ms", metric("small_max_ms")),
        ("peak server RSS, MiB", metric("rss_peak_mib")),
        ("RSS growth over the document size, x", metric("rss_peak_over_doc", 1)),
        (
            "server: commit latency p99 during the run, ms (bucket bound)",
            metric("commit_p99_le_ms", 1),
        ),
        ("server: longest event-loop stall, ms (bucket bound)", metric("loop_stall_max_le_ms")),
    ]
    head = "| big room, cold after a restart | " + " | ".join(
        f"{KINDS[r['server']].label}, {_doc_mb(r):.0f} MB" for r in columns
    )
    out = [head + " |", "|---|" + "---:|" * len(columns)]
    for title, cell in lines:
        out.append(f"| {title} | " + " | ".join(cell(r) for r in columns) + " |")
    return "\n".join(out) + "\n\n" + _when(mine)


def _doc_mb(row: Row) -> float:
    stat = row["metrics"].get("doc_bytes")
    return float(stat["median"]) / 1e6 if isinstance(stat, dict) and "median" in stat else 0.0


SECTIONS: dict[str, Callable[[list[Row]], str]] = {
    "classic": classic,
    "typists": typists,
    "big-room": big_room,
}


def render(text: str, rows: list[Row]) -> str:
    """Replace every marked section of ``text`` with a fresh table."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.DOTALL)
        body = make(rows)

        def put(m: re.Match[str], body: str = body) -> str:
            return m.group(1) + body + "\n" + m.group(2)

        text = pattern.sub(put, text)
    return text


def update(rows: list[Row], pages: tuple[Path, ...] = PAGES, write: bool = True) -> list[Path]:
    """Rewrite the marked sections of each page; the pages that changed (or would)."""
    changed = []
    for page in pages:
        before = page.read_text()
        after = render(before, rows)
        if after != before:
            if write:
                page.write_text(after)
            changed.append(page)
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme", description=__doc__)
    parser.add_argument("jsonl", nargs="?", type=Path, default=RESULTS / "results.jsonl")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on a diff")
    args = parser.parse_args(argv)
    unmarked = [p for p in PAGES if "<!-- bench:" not in p.read_text()]
    if unmarked:
        print(f"no bench: markers in {', '.join(map(str, unmarked))}", file=sys.stderr)
        return 1
    changed = update(read_jsonl(args.jsonl), write=not args.check)
    for page in PAGES:
        state = "up to date" if page not in changed else "differs" if args.check else "updated"
        print(f"{page.relative_to(REPO)}: {state}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

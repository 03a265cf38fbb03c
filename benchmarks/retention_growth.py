"""Bytes on disk against updates, with and without a history window.

    python -m benchmarks.retention_growth [--updates 100000] [--every 1000]
        [--window-bytes 262144] [--out benchmarks/results]

Two workloads on an LMDB DocStore, each run twice (no window: the log kept whole, as
by default; a byte window: entries past it folded, engine/storage/retention.py):

- loop: pycrdt-websocket #116's notebook loop, insert a cell (a map holding a text)
  and delete it, over and over; the document stays empty, the log grows;
- typing: one character after another into a text.

Snapshots are written as the server's policy asks (every 1,000 updates or once the tail
outgrows the snapshot) and folds run every `--every` updates, as the server's background
folder would. Every `--every` updates it records the data file's size and the live bytes
(log + snapshot values). Writes `retention.json` and, where matplotlib is installed (the
peers venv has it: `python -m benchmarks.plots` explains), `retention.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map, Text

from benchmarks.paths import RESULTS
from benchmarks.retention_plot import plot
from engine.document import rebuild
from engine.storage import DocStore, KVLogStore, LmdbKV, Retention
from engine.storage.retention import HistoryWindow, fold_room

ROOM = "nb"


def notebook_loop(count: int) -> Iterator[bytes]:
    """Insert a cell, delete it: two updates per round, the document ends where it began."""
    doc: Doc[Any] = Doc(client_id=1)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    cells = doc.get("cells", type=Array)
    for _ in range(count // 2):
        cells.insert(0, Map({"source": Text("print('hello')"), "type": "code"}))
        yield updates.pop()
        del cells[0]
        yield updates.pop()


def typing(count: int) -> Iterator[bytes]:
    doc: Doc[Any] = Doc(client_id=1)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    text = doc.get("t", type=Text)
    for i in range(count):
        text += "abcdefghij "[i % 11]
        yield updates.pop()


WORKLOADS: dict[str, Callable[[int], Iterator[bytes]]] = {"loop": notebook_loop, "typing": typing}


def live_bytes(store: KVLogStore) -> int:
    log = sum(len(v) for _, v in store.read(ROOM))
    return log + sum(len(v) for _, v in store.snapshots(ROOM))


def run(workload: str, updates: int, every: int, window: int | None) -> list[dict[str, int]]:
    """One run: a point (updates, file bytes, live bytes) every `every` updates."""
    with tempfile.TemporaryDirectory() as tmp:
        kv = LmdbKV(Path(tmp), sync=False)
        log = KVLogStore(kv)
        retention = Retention(history_bytes=window)
        store = DocStore(log, rebuild=rebuild, retention=retention)
        history = HistoryWindow(bytes=window, min_entries=1) if window else None
        points = []
        for n, update in enumerate(WORKLOADS[workload](updates), start=1):
            store.append(ROOM, update, "ann")
            if store.snapshot_due(ROOM):
                store.compact(ROOM, force=True)
            if n % every == 0:
                if history is not None:
                    fold_room(store, ROOM, history, store.clock())
                size = (Path(tmp) / "data.mdb").stat().st_size
                points.append({"updates": n, "file_bytes": size, "live_bytes": live_bytes(log)})
        store.close()
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--window-bytes", type=int, default=256 * 1024)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"updates": args.updates, "window_bytes": args.window_bytes}
    for workload in WORKLOADS:
        results[workload] = {
            "no window": run(workload, args.updates, args.every, None),
            f"window {args.window_bytes} B": run(
                workload, args.updates, args.every, args.window_bytes
            ),
        }
        for label, points in results[workload].items():
            last = points[-1] if points else {}
            print(f"{workload:7} {label:20} {last}")
    (args.out / "retention.json").write_text(json.dumps(results, indent=1))
    png = plot(results, args.out)
    print(f"wrote {args.out / 'retention.json'}" + (f" and {png}" if png else
          " (no matplotlib here: benchmarks/.peers/venv/bin/python -m"
          " benchmarks.retention_plot draws it from the JSON)"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

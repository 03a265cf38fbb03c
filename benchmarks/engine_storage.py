"""Storage engine benchmark: durable append throughput and room load time.

    python -m benchmarks.engine_storage [--updates 100000] [--json]

Appends real Yjs typing updates to an LMDB DocStore with fsync on every commit, in group
commits of 1, 10, 100 and 1000 updates (author ids given, as the server passes them from
its own validation pass), with the process's CPU time per record (steadier than the rate,
which follows the disk's fsync latency), and loads a room of N logged updates with and
without snapshots (snapshot + tail replay vs full log replay).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from engine.document import RoomDocument
from engine.storage import Append, CompactionPolicy, DocStore, KVLogStore, LmdbKV


def typing_updates(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=1)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    text = doc.get("t", type=Text)
    for i in range(count):
        text += "abcdefghij"[i % 10]
    return updates


def append_throughput(updates: list[bytes], batch: int, seconds: float = 2.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = DocStore(
            KVLogStore(LmdbKV(Path(tmp))), policy=CompactionPolicy(every_updates=10**9)
        )
        done = 0
        commits = 0
        cpu = time.process_time()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            chunk = [
                Append("bench", updates[(done + i) % len(updates)], None, (1,))
                for i in range(batch)
            ]
            store.append_many(chunk)
            done += batch
            commits += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        store.close()
    return {
        "batch": batch,
        "records_per_s": round(done / elapsed),
        "commits_per_s": round(commits / elapsed),
        "cpu_us_per_record": round(cpu / done * 1e6, 2),
    }


def load_time(updates: list[bytes], snapshots: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        policy = CompactionPolicy(every_updates=1000 if snapshots else 10**9, min_bytes=10**12)
        store = DocStore(KVLogStore(LmdbKV(Path(tmp))), policy=policy)
        for start in range(0, len(updates), 1000):
            store.append_many([Append("bench", u) for u in updates[start : start + 1000]])
            if snapshots:
                store.compact("bench")
        started = time.perf_counter()
        loaded = store.load("bench")
        read = time.perf_counter() - started
        room = RoomDocument()
        for update in loaded.updates:
            room.apply(update, "storage")
        total = time.perf_counter() - started
        store.close()
    return {
        "updates": len(updates),
        "snapshots": snapshots,
        "read_s": round(read, 4),
        "load_s": round(total, 4),
        "replayed_records": len(loaded.updates),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args(argv)
    updates = typing_updates(args.updates)
    results = [append_throughput(updates, batch) for batch in (1, 10, 100, 1000)]
    results += [load_time(updates, snapshots) for snapshots in (False, True)]
    if args.json:
        for row in results:
            print(json.dumps(row))
        return 0
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print("| group commit size | durable records/s | commits (fsync)/s | CPU µs/record |")
    print("|---|---|---|---|")
    for row in results[:4]:
        print(
            f"| {row['batch']} | {row['records_per_s']:,} | {row['commits_per_s']:,} "
            f"| {row['cpu_us_per_record']} |"
        )
    print(f"\n| room of {args.updates:,} updates | records replayed | read | read + apply |")
    print("|---|---|---|---|")
    for row in results[4:]:
        kind = "snapshot + tail" if row["snapshots"] else "full log"
        print(f"| {kind} | {row['replayed_records']:,} | {row['read_s']} s | {row['load_s']} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Storage engine benchmark: durable append throughput and room load time.

    python -m benchmarks.engine_storage [--updates 100000] [--json]

Appends real Yjs typing updates to an LMDB DocStore with fsync on every commit, in group
commits of 1, 10, 100 and 1000 updates of one room and of one update in each of 7 rooms
out of 100 (author ids given, as the server passes them from its own validation pass),
with the process's CPU time per record (steadier than the rate, which follows the disk's
fsync latency), and loads a room of N logged updates with and without snapshots
(snapshot + tail replay vs full log replay). Last, single-update commits while another
thread keeps the GIL busy, at Python's default switch interval (5 ms) and at the
server's (0.5 ms).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from engine.document import RoomDocument, rebuild
from engine.storage import Append, CompactionPolicy, DocStore, KVLogStore, LmdbKV

# A commit of one update in each of 7 rooms out of 100: what typists in many small rooms
# give the group commit.
MANY_ROOMS_BATCH, MANY_ROOMS = 7, 100


def typing_updates(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=1)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    text = doc.get("t", type=Text)
    for i in range(count):
        text += "abcdefghij"[i % 10]
    return updates


def append_throughput(
    updates: list[bytes], batch: int, seconds: float = 2.0, spread: int = 1
) -> dict[str, Any]:
    """`spread` > 1: the updates of a commit go to that many rooms in turn (each commit
    covers `batch` different rooms), as many small rooms at typing pace do."""
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
                Append(
                    f"bench{(done + i) % spread}" if spread > 1 else "bench",
                    updates[(done + i) % len(updates)],
                    None,
                    (1,),
                )
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
        "rooms": min(batch, spread),
        "records_per_s": round(done / elapsed),
        "commits_per_s": round(commits / elapsed),
        "cpu_us_per_record": round(cpu / done * 1e6, 2),
    }


def busy_loop_commits(updates: list[bytes], switch_s: float, commits: int = 40) -> dict[str, Any]:
    """Commit latency of single-update group commits on a writer thread while another
    thread keeps the GIL busy (the event loop under load): py-lmdb releases the GIL
    around every LMDB call, and each time the writer waits for it to come back."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(switch_s)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(100))

    with tempfile.TemporaryDirectory() as tmp:
        store = DocStore(KVLogStore(LmdbKV(Path(tmp))))
        store.append_many([Append("bench", updates[0], None, (1,))])
        spinner = threading.Thread(target=spin)
        spinner.start()
        times = []
        try:
            for i in range(commits):
                started = time.perf_counter()
                store.append_many([Append("bench", updates[i + 1], None, (1,))])
                times.append(time.perf_counter() - started)
        finally:
            stop.set()
            spinner.join()
            sys.setswitchinterval(old)
            store.close()
    times.sort()
    return {
        "switch_ms": switch_s * 1000,
        "commit_p50_ms": round(times[len(times) // 2] * 1000, 2),
        "commit_p90_ms": round(times[int(len(times) * 0.9)] * 1000, 2),
    }


def load_time(updates: list[bytes], snapshots: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        policy = CompactionPolicy(every_updates=1000 if snapshots else 10**9, min_bytes=10**12)
        store = DocStore(KVLogStore(LmdbKV(Path(tmp))), policy=policy, rebuild=rebuild)
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
    results.append(append_throughput(updates, MANY_ROOMS_BATCH, spread=MANY_ROOMS))
    results += [load_time(updates, snapshots) for snapshots in (False, True)]
    busy = [busy_loop_commits(updates, switch) for switch in (0.005, 0.0005)]
    if args.json:
        for row in results + busy:
            print(json.dumps(row))
        return 0
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print("| group commit size | durable records/s | commits (fsync)/s | CPU µs/record |")
    print("|---|---|---|---|")
    appends = [row for row in results if "batch" in row]
    for row in appends:
        size = (
            f"{row['batch']}" if row["rooms"] == 1 else f"{row['batch']} (in {row['rooms']} rooms)"
        )
        print(
            f"| {size} | {row['records_per_s']:,} | {row['commits_per_s']:,} "
            f"| {row['cpu_us_per_record']} |"
        )
    print(f"\n| room of {args.updates:,} updates | records replayed | read | read + apply |")
    print("|---|---|---|---|")
    for row in results:
        if "batch" in row:
            continue
        kind = "snapshot + tail" if row["snapshots"] else "full log"
        print(f"| {kind} | {row['replayed_records']:,} | {row['read_s']} s | {row['load_s']} s |")
    print("\n| GIL switch interval | commit p50 with a busy thread | p90 |")
    print("|---|---|---|")
    for row in busy:
        print(
            f"| {row['switch_ms']:g} ms | {row['commit_p50_ms']} ms | {row['commit_p90_ms']} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

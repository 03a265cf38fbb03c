"""What the operations features cost: archiving on vs off, and a backup of a big store.

    python -m benchmarks.ops_costs archive [--rooms 50] [--seconds 20]
    python -m benchmarks.ops_costs backup [--store-mb 1024]
    python -m benchmarks.ops_costs recovery [--rooms 50] [--trials 5]

archive: two runs of one `performer serve` on a fresh data directory, without and with
`--archive`, each with `--rooms` writers posting one small text insert after another over
REST (typists: every edit waits for its durable reply). Reports the server process's CPU
seconds per acknowledged edit (utime + stime from /proc) and the p50/p99 reply latency.

backup: fills an LMDB store to about `--store-mb` MB (rooms of typing, fsync off while
filling), then times `performer backup --data` on it and reports the backup's size.

recovery: the drill, `--trials` times: a server with `--archive` under `--rooms` writers,
kill -9 at a random moment, its data directory deleted, `performer recover` from the
archive; reports the acknowledged edits missing from the recovered store and the seconds
between the oldest of them and the kill (the archive's delay in practice).

Prints one JSON line per measurement and appends it to results/ops_costs.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc, Text

from benchmarks.paths import RESULTS
from engine.storage import Append, DocStore, KVLogStore, LmdbKV
from harness.ops_load import Load, room_text, wait_for_edits
from harness.process import ServerProcess

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def _typist(http: aiohttp.ClientSession, url: str, room: str, stop: float,
                  latencies: list[float]) -> None:  # fmt: skip
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    while time.monotonic() < stop:
        before = doc.get_state()
        text += "x"
        started = time.monotonic()
        reply = await http.post(f"{url}/v1/rooms/{room}/update", data=doc.get_update(before))
        await reply.read()
        latencies.append(time.monotonic() - started)


async def _drive(url: str, rooms: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(_typist(http, url, f"t{i}", stop, latencies) for i in range(rooms)))
    return latencies


def archive_run(archive: bool, rooms: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--archive", str(Path(tmp) / "archive")] if archive else []
        server = ServerProcess(Path(tmp) / "data", extra)
        server.start()
        assert server.process is not None
        pid = server.process.pid
        cpu_before = cpu_seconds(pid)
        latencies = asyncio.run(_drive(server.url, rooms, seconds))
        time.sleep(1.5)  # let the archive catch up: its CPU counts too
        cpu = cpu_seconds(pid) - cpu_before
        server.stop()
    cuts = statistics.quantiles(latencies, n=100)
    return {"what": "archive", "archive": archive, "rooms": rooms, "edits": len(latencies),
            "cpu_us_per_edit": round(cpu / len(latencies) * 1e6, 1),
            "p50_ms": round(cuts[49] * 1e3, 2), "p99_ms": round(cuts[98] * 1e3, 2)}  # fmt: skip


def fill(path: Path, megabytes: int) -> int:
    """Rooms of typing until the log holds about `megabytes` MB; returns the rooms made."""
    store = DocStore(KVLogStore(LmdbKV(path, sync=False)))
    doc: Doc[Any] = Doc(client_id=1)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(bytes(event.update)))
    text = doc.get("t", type=Text)
    for _ in range(1000):
        text += "lorem ipsum dolor sit amet " * 4
    written, room = 0, 0
    while written < megabytes * 1_000_000:
        room += 1
        store.append_many([Append(f"room-{room}", u, "ann") for u in updates])
        written += sum(map(len, updates))
    store.close()
    return room


def backup_run(megabytes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        rooms = fill(data, megabytes)
        store_bytes = (data / "data.mdb").stat().st_size
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "server", "backup", "--data", str(data),
                        str(Path(tmp) / "backup")], check=True, capture_output=True)  # fmt: skip
        seconds = time.monotonic() - started
        size = sum(f.stat().st_size for f in (Path(tmp) / "backup").iterdir())
    return {"what": "backup", "store_mb": megabytes, "rooms": rooms,
            "store_bytes": store_bytes, "backup_bytes": size,
            "seconds": round(seconds, 2)}  # fmt: skip


async def _drill(tmp: Path, rooms: int, rng: random.Random) -> dict[str, Any]:
    server = ServerProcess(tmp / "data", ["--archive", str(tmp / "archive")])
    server.start()
    load = Load(server.url, rooms)
    await load.start()
    await wait_for_edits(load, at_least=5)
    await asyncio.sleep(rng.uniform(1.0, 4.0))
    killed_at = time.time()
    server.kill()
    await load.stop()
    shutil.rmtree(tmp / "data")
    recover = [sys.executable, "-m", "server", "recover", "--archive", str(tmp / "archive"),
               "--out", str(tmp / "data")]  # fmt: skip
    await asyncio.to_thread(subprocess.run, recover, check=True, capture_output=True)
    server.start()
    lost = []
    for writer in load.writers:
        text = await room_text(server.url, writer.room)
        lost += [a for a in writer.acked if a.token not in text]
    server.stop()
    span = killed_at - min((a.at for a in lost), default=killed_at)
    return {"what": "recovery", "rooms": rooms, "acked": load.total(), "lost": len(lost),
            "lost_span_s": round(span, 3)}  # fmt: skip


def recovery_runs(rooms: int, trials: int) -> list[dict[str, Any]]:
    rng = random.Random()
    rows = []
    for _ in range(trials):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(asyncio.run(_drill(Path(tmp), rooms, rng)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["archive", "backup", "recovery"])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--store-mb", type=int, default=1024)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.what == "archive":
        rows = [archive_run(False, args.rooms, args.seconds),
                archive_run(True, args.rooms, args.seconds)]  # fmt: skip
    elif args.what == "recovery":
        rows = recovery_runs(args.rooms, args.trials)
    else:
        rows = [backup_run(args.store_mb)]
    args.results.mkdir(parents=True, exist_ok=True)
    with open(args.results / "ops_costs.jsonl", "a") as out:
        for row in rows:
            line = json.dumps({**row, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            print(line)
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

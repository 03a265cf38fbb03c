"""Restore's cost on a big room: N maps, every other one changed, restored to the state
before the change (an array root and a map root), in seconds of `restore_update`, the
work a restore request hands its worker.

Two targets: one the worker must walk (`cpu_seconds`: log records merged, or a
snapshot not known to be whole) and one it loads as is (`whole_cpu_seconds`: a big
room's snapshots are stored whole, and a target merged from checked updates is not
walked twice). CPU time is the measure; wall time is printed too (on a shared machine
it also counts the waits for a core). `scan_cpu_seconds` is what walking both states'
structs in Python costs (the root types of the current state, the bounded check of a
walked target), which the diff itself does not change.

Several sizes show how the cost grows (`cpu_us_per_map` stays flat when it grows
linearly). Fails (exit 1) when the best whole-target run of `--repeats` passes
`--max-seconds` per 20,000 maps (2, the issue's bound; 4 for 40,000 maps, and so on)::

    python -m benchmarks.restore_scale --maps 20000
    python -m benchmarks.restore_scale --maps 5000 10000 20000 40000 --repeats 1
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Doc, Map

from engine.jsonview import root_types, to_json
from engine.restore import restore_update
from engine.update_scan import scan_update

BOUND_MAPS = 20_000  # --max-seconds is the bound for this many maps


@dataclass(frozen=True)
class Timing:
    """Best runs' CPU and wall seconds (target walked, target whole), and the CPU of the
    struct scans alone."""

    cpu: float
    wall: float
    whole_cpu: float
    whole_wall: float
    scan_cpu: float


def room(maps: int, root: str) -> tuple[bytes, bytes]:
    """(now, past): `maps` maps under one root, then every other one changed."""
    doc: Doc[Any] = Doc()
    if root == "array":
        items: Any = doc.get("items", type=Array)
        keys: list[Any] = list(range(maps))
        with doc.transaction():
            for i in keys:
                items.append(Map({"n": i, "label": f"item {i}"}))
    else:
        items = doc.get("items", type=Map)
        keys = [f"k{i}" for i in range(maps)]
        with doc.transaction():
            for i, key in enumerate(keys):
                items[key] = Map({"n": i, "label": f"item {i}"})
    past = doc.get_update()
    with doc.transaction():
        for i in range(0, maps, 2):
            items[keys[i]]["n"] = -i
    return doc.get_update(), past


def best_run(now: bytes, past: bytes, repeats: int, whole: bool) -> tuple[float, float]:
    """The least CPU and wall seconds of `repeats` restores, checked to be exact."""
    cpu = wall = float("inf")
    for _ in range(repeats):
        started, started_wall = time.process_time(), time.perf_counter()
        update = restore_update(now, past, target_whole=whole)
        cpu = min(cpu, time.process_time() - started)
        wall = min(wall, time.perf_counter() - started_wall)
    restored: Doc[Any] = Doc()
    restored.apply_update(now)
    restored.apply_update(update)
    assert to_json(restored.get_update()) == to_json(past), "the restore is not exact"
    return cpu, wall


def best_timing(now: bytes, past: bytes, repeats: int) -> Timing:
    cpu, wall = best_run(now, past, repeats, whole=False)
    whole_cpu, whole_wall = best_run(now, past, repeats, whole=True)
    started = time.process_time()
    root_types(now)
    scan_update(past)
    return Timing(cpu, wall, whole_cpu, whole_wall, time.process_time() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, nargs="+", default=[BOUND_MAPS])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    failed = False
    for maps in args.maps:
        bound = args.max_seconds * maps / BOUND_MAPS
        for root in ("array", "map"):
            timing = best_timing(*room(maps, root), args.repeats)
            print(
                f"RESULT restore_scale root={root} maps={maps} cpu_seconds={timing.cpu:.2f} "
                f"wall_seconds={timing.wall:.2f} whole_cpu_seconds={timing.whole_cpu:.2f} "
                f"whole_wall_seconds={timing.whole_wall:.2f} "
                f"scan_cpu_seconds={timing.scan_cpu:.2f} "
                f"cpu_us_per_map={timing.whole_cpu / maps * 1e6:.0f}"
            )
            if timing.whole_cpu > bound:
                print(f"PROBLEM {root} root, {maps} maps: {timing.whole_cpu:.2f} s > {bound:.2f} s")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Restore's cost on a big room: 20,000 maps, every other one changed, restored to the
state before the change (an array root and a map root), in CPU seconds of
`restore_update`, the work a restore request hands its worker. Fails (exit 1) when the
best of `--repeats` runs passes `--max-seconds` (2, the issue's bound)::

    python -m benchmarks.restore_scale --maps 20000
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pycrdt import Array, Doc, Map

from engine.jsonview import to_json
from engine.restore import restore_update


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


def best_seconds(now: bytes, past: bytes, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        update = restore_update(now, past)
        best = min(best, time.process_time() - started)
    restored: Doc[Any] = Doc()
    restored.apply_update(now)
    restored.apply_update(update)
    assert to_json(restored.get_update()) == to_json(past), "the restore is not exact"
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    failed = False
    for root in ("array", "map"):
        seconds = best_seconds(*room(args.maps, root), args.repeats)
        print(f"RESULT restore_scale root={root} maps={args.maps} cpu_seconds={seconds:.2f}")
        if seconds > args.max_seconds:
            print(f"PROBLEM {root} root: {seconds:.2f} s > {args.max_seconds:g} s")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

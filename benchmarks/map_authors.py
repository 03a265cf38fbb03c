"""What authorship by client id on a map root costs an allowed edit, in the engine alone.

    python -m benchmarks.map_authors [--keys 2000] [--edits 500]

A room whose root map `notes` holds `--keys` entries (maps with a text), written by ann.
Ann then makes `--edits` allowed edits (every third overwrites one of her keys, the others
type into one of her texts), each judged as the room's actor judges a writer's update
(root types, start, apply, finish); one edit before them is not timed (the room's first
judged update reads the whole state once). Four runs, each on a fresh room:

- `off`: no rules (the apply alone);
- `write`: rules that judge every change but need no authors (`write = [...]`), what
  the rules' machinery costs by itself;
- `on`: `entries = "author"` without `author_field` on `notes` (compare with `write`);
- `on, after remote`: the same, but before each edit another user's update (as from
  another process) sets one key, so the next edit reads the whole state again: the worst
  case, and what grows with the room (docs/limitations.md).

Prints one JSON line: CPU microseconds per edit for each run.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pycrdt import Doc, Map, Text

from engine.rules.authorship import Authorship
from engine.rules.enforce import RoomRules, Writer
from engine.rules.model import parse_rules
from engine.rules.owners import SERVER
from engine.yjs import decode_state_vector

RULES = '[[rule]]\npath = "notes"\ntype = "map"\nentries = "author"\n'
WRITE_RULES = '[[rule]]\npath = "notes"\ntype = "map"\nwrite = ["ann", "bo"]\n'


def _update(doc: Doc[Any], edit: Any) -> bytes:
    before = doc.get_state()
    with doc.transaction():
        edit(doc.get("notes", type=Map))
    return bytes(doc.get_update(before))


def _edit(number: int, keys: int) -> Any:
    key = f"k{abs(number) * 7919 % keys}"
    if number % 3 == 0:
        return lambda notes: notes.__setitem__(key, Map({"text": Text(f"v{number}")}))
    return lambda notes: notes[key]["text"].insert(0, "x")


def run(keys: int, edits: int, *, rules: str | None, remote: bool = False) -> float:
    """CPU microseconds per allowed edit under `rules` (None: none)."""
    room: Doc[Any] = Doc()
    ann: Doc[Any] = Doc()
    other: Doc[Any] = Doc()
    bindings = {room.client_id: SERVER, ann.client_id: "ann", other.client_id: "bo"}
    judge = RoomRules(room, parse_rules(rules).rules, Authorship(bindings)) if rules else None
    room.apply_update(
        _update(ann, lambda notes: [notes.__setitem__(f"k{n}", Map({"text": Text("")}))
                                    for n in range(keys)])
    )  # fmt: skip
    spent = 0.0
    for number in range(-1, edits):
        if remote:
            other.apply_update(room.get_update(other.get_state()))
            room.apply_update(_update(other, lambda notes, n=number: notes.__setitem__("bo", n)))
        ann.apply_update(room.get_update(ann.get_state()))
        update = _update(ann, _edit(number, keys))
        started = time.process_time()
        if judge is not None:
            clocks = decode_state_vector(room.get_state())
            judge.check_types(update, clocks)
            judge.start(Writer("ann"), update, clocks)
        room.apply_update(update)
        if judge is not None:
            assert judge.finish() is None, "every edit here is allowed"
        if number >= 0:
            spent += time.process_time() - started
    return spent / edits * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=500)
    args = parser.parse_args()
    found = {
        "keys": args.keys,
        "edits": args.edits,
        "off_us": run(args.keys, args.edits, rules=None),
        "write_us": run(args.keys, args.edits, rules=WRITE_RULES),
        "on_us": run(args.keys, args.edits, rules=RULES),
        "on_after_remote_us": run(args.keys, args.edits, rules=RULES, remote=True),
    }
    print(json.dumps({name: round(value, 1) for name, value in found.items()}))


if __name__ == "__main__":
    main()

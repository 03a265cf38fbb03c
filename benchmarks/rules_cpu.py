"""The chat rules' CPU per edit, in-process: a relative A/B that holds up on a busy machine.

    python -m benchmarks.rules_cpu [--edits 3000] [--rounds 5] [--workload typists]
    python -m benchmarks.rules_cpu --profile rules [--edits 3000]

Records `--edits` updates once (pycrdt replicas: `typists`, three typists inserting two
characters at random places into the text root `t`, as workload T's clients do; or `chat`,
three users appending chat messages to `messages` as the demo does), then applies each,
one per batch, as a writer's update (`RoomActor.post_update`: the guard, the rules, the
apply, the commit) to two rooms, one with the chat demo's rules
(`examples/chat-rules.toml`, on an open server as the `ours-rules` benchmark server runs
them) and one without, each on a store on `MemoryKV`. The two rooms take turns update by
update (who goes first swapping each time), so a shared machine's load hits both alike;
the event loop thread's CPU time per edit is printed per round (`--rounds` rounds, fresh
rooms each), with the medians and the median of the rounds' differences.

The absolute figures are not the server's (no sockets, no protocol framing, no fsync):
the difference between the two is what the rules add per edit; set against the `ours`
figure of the real suite (benchmarks/results/FEATURES.md) it says how far the rules are
from "at most 10 % more server CPU per edit". `--profile rules|off` runs one
pass under cProfile and prints the top functions by their own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from pycrdt import Array, Doc, Map, Text

from benchmarks.paths import REPO
from engine.rules.model import Rules, load_rules
from engine.storage import DocStore, KVLogStore, MemoryKV
from server.config import Config
from server.metrics import Metrics
from server.rooms.actor import RoomActor
from server.rooms.fanout import LocalFanout
from server.rooms.registry import RoomRegistry
from server.rooms.store import RoomStore

CHAT_RULES = REPO / "examples" / "chat-rules.toml"
ROOM = "bench"
TYPISTS = 3
EDIT = "ab"  # what every typist's edit inserts, as workload T's clients do


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rules_cpu", description=__doc__)
    p.add_argument("--edits", type=int, default=3000, help="updates per run (default 3000)")
    p.add_argument("--rounds", type=int, default=5, help="runs per side, interleaved")
    p.add_argument("--workload", choices=("typists", "chat"), default="typists")
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--profile", choices=("rules", "off"), help="one run under cProfile")
    p.add_argument("--top", type=int, default=25, help="functions --profile prints")
    return p.parse_args(argv)


def record(workload: str, edits: int, seed: int) -> list[bytes]:
    """The updates `TYPISTS` replicas send for `edits` edits, each replica applying the
    others' updates at once (so every edit continues from the whole room)."""
    rand = random.Random(seed)
    replicas: list[Doc[Any]] = [Doc() for _ in range(TYPISTS)]
    sent: list[bytes] = []
    for number in range(edits):
        doc = replicas[number % TYPISTS]
        for update in _sent(doc, partial(_edit, workload, rand=rand, number=number)):
            sent.append(update)
            for other in replicas:
                if other is not doc:
                    other.apply_update(update)
    return sent


def _sent(doc: Doc[Any], edit: Callable[[Doc[Any]], None]) -> list[bytes]:
    """The updates one transaction of `edit` on `doc` sends."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
    with doc.transaction():
        edit(doc)
    doc.unobserve(subscription)
    return updates


def _edit(workload: str, doc: Doc[Any], *, rand: random.Random, number: int) -> None:
    if workload == "typists":
        text = doc.get("t", type=Text)
        text.insert(rand.randint(0, len(text)), EDIT)
        return
    user = f"user{number % TYPISTS}"
    fields = {"id": f"m{number}", "user": user, "text": "hello there", "ts": number}
    doc.get("messages", type=Array).append(Map({**fields, "reactions": Map()}))  # as the demo


@asynccontextmanager
async def room(rules: Rules) -> AsyncIterator[RoomActor]:
    """A fresh room's actor on its own in-memory store, holding `rules`."""
    store = RoomStore(DocStore(KVLogStore(MemoryKV())), Metrics())
    await store.start()
    registry = RoomRegistry(store, LocalFanout(), Config(rules=rules), Metrics())
    try:
        yield await registry.acquire(ROOM)
    finally:
        await registry.close(5.0)
        await store.close()


async def apply_all(updates: list[bytes], rules: Rules) -> None:
    """Apply `updates`, one batch each, as a writer's (judged; a refusal raises)."""
    async with room(rules) as actor:
        for update in updates:
            await actor.post_update(update, None)


async def one_round(updates: list[bytes], sides: dict[str, Rules]) -> dict[str, float]:
    """Each update applied in a room of each side, the sides' order swapped every update
    (so a busy moment of the machine hits both); the event loop thread's CPU seconds
    each side spent (the commits, on the store's writer thread, cost both alike)."""
    spent = dict.fromkeys(sides, 0.0)
    async with room(sides["off"]) as plain, room(sides["rules"]) as judged:
        actors = {"off": plain, "rules": judged}
        for number, update in enumerate(updates):
            for name in sorted(actors, reverse=number % 2 == 1):
                began = time.thread_time()
                await actors[name].post_update(update, None)
                spent[name] += time.thread_time() - began
    return spent


def chat_rules() -> Rules:
    """The chat demo's rules as the `ours-rules` benchmark server holds them (no auth
    secret: writers are anonymous, so the rules that name users are not judged)."""
    loaded = load_rules(CHAT_RULES)
    return Rules(loaded.rules, anonymous_writers=True)


def measure(updates: list[bytes], rounds: int) -> dict[str, list[float]]:
    """µs per edit of each side, per round."""
    sides: dict[str, Rules] = {"off": Rules(), "rules": chat_rules()}
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for number in range(rounds):
        spent = asyncio.run(one_round(updates, sides))
        for name, seconds in spent.items():
            runs[name].append(seconds / len(updates) * 1e6)
        off, rules = runs["off"][-1], runs["rules"][-1]
        print(f"round {number + 1}: off {off:7.1f}, rules {rules:7.1f} µs/edit", flush=True)
    return runs


def summarize(runs: dict[str, list[float]]) -> str:
    """The medians, and the median of each round's difference (a round's two runs are
    next to each other in time: the least disturbed measure of what the rules add)."""
    off, on = statistics.median(runs["off"]), statistics.median(runs["rules"])
    pairs = [rules - plain for plain, rules in zip(runs["off"], runs["rules"], strict=True)]
    added = statistics.median(pairs)
    return (
        f"median µs/edit: off {off:.1f}, rules {on:.1f}; rules add {added:+.1f} µs/edit "
        f"(median of rounds; {added / off * 100:+.1f} % here), "
        f"per round {', '.join(f'{d:+.1f}' for d in pairs)}"
    )


def profile(updates: list[bytes], side: str, top: int) -> None:
    rules = chat_rules() if side == "rules" else Rules()
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, apply_all(updates, rules))
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    updates = record(args.workload, args.edits, args.seed)
    size = sum(map(len, updates)) / len(updates)
    print(f"{len(updates)} {args.workload} updates, {size:.0f} B each")
    if args.profile:
        profile(updates, args.profile, args.top)
        return 0
    print(summarize(measure(updates, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

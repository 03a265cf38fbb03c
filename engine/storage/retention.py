"""History retention: entries older than the window are folded into a snapshot at its edge.

With a window (`serve --history-days N` and/or `--history-bytes N`), a room keeps its full
log for the newest N days and/or the newest N bytes; entries before that edge are folded:
the state at the edge (seq S) is written as a snapshot, and the log up to S is trimmed in
the same atomic step (`LogStore.put_snapshot(trim_log=True)`). Then snapshots older than S
are dropped. What stays of the folded entries:

- a summary per fold, metadata `folded:<S>`: seq range, how many entries, their bytes,
  first and last time, and who edited (user -> entries): the audit trail still answers
  "who touched this room in March";
- the state of every named version (`label:NAME`) at or before S, metadata
  `kept:<seq>`: named versions stay restorable whatever their age.

`?at=` inside the window is exact (snapshot at S + log); before it, `DocStore.state_at`
raises `HistoryFolded` naming the oldest position, unless a named version's state was kept.

Crash safety: a fold is a sequence of writes each atomic on its own, in an order where a
stop between any two leaves a whole store: kept version states, the summary, then the
snapshot with the trim (one transaction / one Lua script), then the drop of older
snapshots. A summary whose fold never happened (its S is past the log's start) is
replaced by the next fold's. Nothing is deleted that the snapshot written in the same
step does not cover.

A fold reads off the writer (`read_fold`), builds the states it keeps (`fold_states`: a
pure function of bytes, which a server runs in its compute worker for a big room), and
writes briefly on the writer (`apply_fold`), so room commits never wait for a rebuild
and the event loop never waits for pycrdt. `plan_fold` does the first two in-process.
A room with too few entries past its edge is not read again round after round: by age
the pre-check reads the one entry that decides; by bytes, `Deferred` says how far the log
must grow first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from pycrdt import get_state

from engine.storage.docstore import DocStore, Rebuild, kept_key
from engine.storage.records import Snapshot, UpdateRecord, pack, unpack
from engine.storage.tools import LABEL_PREFIX

FOLDED_PREFIX = "folded:"
PAGE = 1000
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """How much history to keep: by age (`seconds`) and/or size (`bytes`); a fold happens
    once at least `min_entries` are past the edge (a snapshot per entry would cost more
    than the entries)."""

    seconds: float | None = None
    bytes: int | None = None
    min_entries: int = 100


@dataclass(frozen=True, slots=True)
class FoldSummary:
    """What one fold removed from the log: the audit trail's memory of it."""

    from_seq: int
    upto: int
    count: int
    size: int  # bytes of the folded records
    first_ts: float
    last_ts: float
    users: dict[str, int] = field(default_factory=dict)  # "" for entries without a user

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> FoldSummary:
        data = json.loads(raw)
        return cls(int(data["from_seq"]), int(data["upto"]), int(data["count"]),
                   int(data["size"]), float(data["first_ts"]), float(data["last_ts"]),
                   {str(k): int(v) for k, v in data["users"].items()})  # fmt: skip


@dataclass(frozen=True, slots=True)
class FoldPlan:
    """A fold computed off the writer; `apply_fold` writes it if nothing moved meanwhile."""

    room: str
    oldest: int  # the oldest position when planned: the fold applies only from there
    snapshot: Snapshot  # the state at the window's edge
    summary: FoldSummary
    kept: dict[int, bytes]  # named versions' states (packed snapshots) by seq


def fold_point(
    entries: list[tuple[int, float, int]], window: HistoryWindow, now: float
) -> int | None:
    """The last seq past the window's edge, given (seq, ts, bytes) ascending; None if none."""
    upto = None
    if window.seconds is not None:
        cutoff = now - window.seconds
        old = [seq for seq, ts, _ in entries if ts < cutoff]
        upto = old[-1] if old else None
    if window.bytes is not None:
        kept = 0
        for seq, _, size in reversed(entries):
            kept += size
            if kept > window.bytes:
                upto = max(upto or 0, seq)
                break
    return upto


def fold_may_be_due(
    docs: DocStore, room: str, window: HistoryWindow, now: float, edge_bytes: int | None
) -> bool:
    """Cheap: whether `plan_fold` could find something (reads one entry at most).
    `edge_bytes`: a byte window is due only once the room's log_bytes pass this plus the
    window (the log_bytes at its last fold's edge, or what `Deferred` said), if known.

    By age, a fold needs `min_entries` past the edge, so it is the entry that many after
    the oldest position whose age decides (times grow with seqs): a room with an old first
    entry but too few old ones is not planned (its log read) round after round."""
    info = docs.info(room)
    if info is None:
        return False
    oldest = docs.oldest_position(room)
    if info.last_seq - oldest < window.min_entries:
        return False
    if window.bytes is not None and info.log_bytes - (edge_bytes or 0) > window.bytes:
        return True
    if window.seconds is not None:
        deciding = docs.log.read(room, oldest + window.min_entries - 1, limit=1)
        return bool(deciding) and UpdateRecord.from_map(
            unpack(deciding[0][1]), deciding[0][0]
        ).ts < (now - window.seconds)
    return False


@dataclass(frozen=True, slots=True)
class Deferred:
    """Too few entries past the window's edge to fold yet. A byte window cannot ask for a
    fold before the room's log_bytes pass `edge_bytes` + the window (entries are only
    ever added after the ones that would be folded)."""

    edge_bytes: int


@dataclass(frozen=True, slots=True)
class FoldInputs:
    """What a fold reads off the writer. Turning `base` + `tail` into the states it keeps
    (the edge, named versions leaving the window) is pycrdt work: `fold_states`, which a
    server runs in its compute worker for a big room, so the event loop never waits on it."""

    room: str
    oldest: int
    summary: FoldSummary
    base: bytes | None  # a snapshot at or before the first state to build, or nothing
    tail: list[tuple[int, bytes]]  # (seq, update) after the base, up to the edge
    versions: tuple[int, ...]  # named versions leaving the window (their states are kept)
    log_bytes: int  # the room's log size at the edge

    @property
    def marks(self) -> tuple[int, ...]:
        """The seqs whose states are built: the named versions and the edge."""
        return tuple(sorted({*self.versions, self.summary.upto}))

    @property
    def stored_bytes(self) -> int:
        """About what building the states costs (to pick in-process or the worker)."""
        return len(self.base or b"") + sum(len(update) for _, update in self.tail)


def fold_states(
    base: bytes | None, tail: list[tuple[int, bytes]], marks: tuple[int, ...], rebuild: Rebuild
) -> dict[int, tuple[bytes, bytes]]:
    """The state (and its state vector) at each mark, from `base` + `tail`. A pure
    function of bytes, so it can run in another process."""
    out = {}
    for mark in marks:
        updates = ([base] if base is not None else []) + [u for seq, u in tail if seq <= mark]
        state = rebuild(updates)
        out[mark] = (state, get_state(state))
    return out


def _log_pages(docs: DocStore, room: str, after: int) -> Iterator[list[tuple[int, bytes]]]:
    while True:
        page = docs.log.read(room, after, limit=PAGE)
        if not page:
            return
        yield page
        after = page[-1][0]


def read_fold(
    docs: DocStore, room: str, window: HistoryWindow, now: float
) -> FoldInputs | Deferred | None:
    """What folding `room` now needs, read (None: nothing past the edge; Deferred: too
    few entries there yet)."""
    oldest = docs.oldest_position(room)
    entries: list[tuple[int, float, int]] = []
    users_of: dict[int, str] = {}
    for page in _log_pages(docs, room, oldest):
        for seq, value in page:
            record = UpdateRecord.from_map(unpack(value), seq)
            entries.append((seq, record.ts, len(value)))
            users_of[seq] = record.user or ""
    upto = fold_point(entries, window, now)
    if upto is None:
        return None
    folded = [e for e in entries if e[0] <= upto]
    info = docs.require(room)
    if len(folded) < window.min_entries:
        enough = entries[window.min_entries - 1][0] if len(entries) >= window.min_entries else None
        return Deferred(info.log_bytes - sum(size for seq, _, size in entries
                                             if enough is None or seq > enough))  # fmt: skip
    users: dict[str, int] = {}
    for seq, _, _ in folded:
        users[users_of[seq]] = users.get(users_of[seq], 0) + 1
    summary = FoldSummary(folded[0][0], upto, len(folded), sum(e[2] for e in folded),
                          folded[0][1], folded[-1][1], users)  # fmt: skip
    after = sum(size for seq, _, size in entries if seq > upto)
    versions = tuple(_versions_leaving(docs, room, oldest, upto))
    first = min(versions, default=upto)
    snapshot, records = docs.pieces_at(room, first)
    tail = [(r.seq, r.update) for r in records]
    tail += [(r.seq, r.update) for r in docs.records(room, first, upto)]
    base = snapshot.update if snapshot is not None else None
    return FoldInputs(room, oldest, summary, base, tail, versions, info.log_bytes - after)


def _versions_leaving(docs: DocStore, room: str, oldest: int, upto: int) -> list[int]:
    """Named versions the fold would take out of the window whose states are not kept yet."""
    seqs = {int(raw) for _, raw in docs.scan_meta(room, LABEL_PREFIX)}
    return [s for s in sorted(seqs)
            if oldest < s <= upto and docs.get_meta(room, kept_key(s)) is None]  # fmt: skip


def plan_from(inputs: FoldInputs, states: dict[int, tuple[bytes, bytes]], now: float) -> FoldPlan:
    """The plan, once `fold_states` built the states `inputs` asks for."""
    edge = inputs.summary.upto
    state, vector = states[edge]
    snapshot = Snapshot(edge, now, state, vector, inputs.log_bytes)
    kept = {seq: pack(Snapshot(seq, now, states[seq][0], states[seq][1]).to_map())
            for seq in inputs.versions}  # fmt: skip
    return FoldPlan(inputs.room, inputs.oldest, snapshot, inputs.summary, kept)


def plan_fold(docs: DocStore, room: str, window: HistoryWindow, now: float) -> FoldPlan | None:
    """The fold the window asks of `room` now, built in this process with the store's
    own rebuild (None: nothing, or too little, to fold)."""
    inputs = read_fold(docs, room, window, now)
    if not isinstance(inputs, FoldInputs):
        return None
    states = fold_states(inputs.base, inputs.tail, inputs.marks, docs.rebuild_updates)
    return plan_from(inputs, states, now)


def apply_fold(docs: DocStore, plan: FoldPlan) -> bool:
    """Write a planned fold (on the writer thread); False if the room moved under it."""
    room, upto = plan.room, plan.snapshot.seq
    if docs.info(room) is None or docs.oldest_position(room) != plan.oldest:
        return False
    for seq, record in plan.kept.items():
        docs.set_meta(room, kept_key(seq), record)
    for name, raw in docs.scan_meta(room, FOLDED_PREFIX):
        if FoldSummary.decode(raw).upto > plan.oldest:  # written by a fold that never ran
            docs.set_meta(room, name, None)
    docs.set_meta(room, f"{FOLDED_PREFIX}{upto:020d}", plan.summary.encode())
    won = docs.log.put_snapshot(
        room,
        upto,
        pack(plan.snapshot.to_map()),
        expect=docs.log.newest_snapshot_seq(room),
        keep=0,
        trim_log=True,
    )
    if won:
        docs.log.drop_snapshots_before(room, upto)
    return won


def fold_room(docs: DocStore, room: str, window: HistoryWindow, now: float) -> FoldSummary | None:
    """Plan and apply in one go (a store nobody else writes: tests, offline tools)."""
    plan = plan_fold(docs, room, window, now)
    if plan is None or not apply_fold(docs, plan):
        return None
    return plan.summary


def folded_summaries(docs: DocStore, room: str) -> list[FoldSummary]:
    """Every fold's summary of the room, oldest first (only those whose fold happened)."""
    oldest = docs.oldest_position(room)
    summaries = [FoldSummary.decode(raw) for _, raw in docs.scan_meta(room, FOLDED_PREFIX)]
    return [s for s in summaries if s.upto <= oldest]

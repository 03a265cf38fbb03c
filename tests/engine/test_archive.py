"""The archive format and recovery at the storage layer: what a consumer writes is what
recovery reads; a crash that ships entries twice changes nothing; an archive begun after
the log was folded recovers from its base snapshot; a tampered archive is refused with
a clear error, never half-recovered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Text

from engine.document import rebuild
from engine.errors import StorageError
from engine.storage import DocStore, KVLogStore, LmdbKV, MemoryKV
from engine.storage.archive import (
    DirectoryTarget,
    Manifest,
    add_segment,
    add_snapshot,
    merge_small_segments,
    prune_snapshots,
    read_manifest,
    room_dir,
    write_manifest,
)
from engine.storage.recover import recover
from engine.storage.retention import HistoryWindow, fold_room
from engine.storage.tools import verify
from tests.engine.helpers import content, recording_doc
from tests.engine.test_docstore import FakeClock


def typed_store(count: int) -> tuple[DocStore, list[bytes]]:
    store = DocStore(KVLogStore(MemoryKV()), rebuild=rebuild, clock=FakeClock())
    doc, updates = recording_doc(1)
    text = doc.get("t", type=Text)
    for i in range(count):
        text += "ab"[i % 2]
        store.append("r:1 é", updates[-1], f"u{i % 2}")
    return store, updates


def ship(store: DocStore, target: DirectoryTarget, batches: list[tuple[int, int]]) -> None:
    """What the server's consumer does, batch by batch (after, upto)."""
    room = "r:1 é"
    manifest = read_manifest(target, room) or Manifest(room, store.require(room).created)
    for after, upto in batches:
        fresh = [r for r in store.entries(room, after, upto) if r.seq > manifest.last_seq]
        if fresh and fresh[0].seq > manifest.last_seq + 1:
            add_snapshot(target, manifest, fresh[0].seq - 1, 0.0,
                         store.state_at(room, fresh[0].seq - 1))  # fmt: skip
        if fresh:
            add_segment(target, manifest, fresh)
        merged = merge_small_segments(target, manifest)
        write_manifest(target, manifest)
        for name in merged:
            target.delete(f"{room_dir(room)}/{name}")


def test_what_is_shipped_recovers_with_seqs_users_and_times(tmp_path: Path) -> None:
    store, updates = typed_store(60)
    target = DirectoryTarget(tmp_path / "archive")
    ship(store, target, [(0, 20), (20, 45), (10, 30), (45, 60)])  # (10, 30): shipped again

    rooms = recover(target, tmp_path / "out")

    assert rooms == {"r:1 é": 60}
    out = DocStore(KVLogStore(LmdbKV(tmp_path / "out")), rebuild=rebuild)
    assert out.history("r:1 é", limit=100) == store.history("r:1 é", limit=100)
    assert content([out.state_at("r:1 é", 33)]) == content(updates[:33])
    assert verify(out).ok
    names = {p.name for p in (tmp_path / "archive" / room_dir("r:1 é")).iterdir()}
    assert "manifest.json" in names and not any(n.startswith(".") for n in names)


def test_small_segments_are_merged_so_the_manifest_stays_short(tmp_path: Path) -> None:
    store, updates = typed_store(300)
    target = DirectoryTarget(tmp_path / "archive")
    ship(store, target, [(i, i + 2) for i in range(0, 300, 2)])  # 150 deliveries

    manifest = read_manifest(target, "r:1 é")
    assert manifest is not None
    assert len(manifest.segments) < 64, len(manifest.segments)
    files = {p.name for p in (tmp_path / "archive" / room_dir("r:1 é")).glob("log-*")}
    assert files == {s["file"] for s in manifest.segments}, "merged files are deleted"
    recover(target, tmp_path / "out")
    out = DocStore(KVLogStore(LmdbKV(tmp_path / "out")), rebuild=rebuild)
    assert out.history("r:1 é", limit=1000) == store.history("r:1 é", limit=1000)
    assert content(out.load("r:1 é").updates) == content(updates)


def test_an_archive_begun_after_a_fold_recovers_from_its_base_snapshot(tmp_path: Path) -> None:
    store, updates = typed_store(300)
    assert fold_room(store, "r:1 é", HistoryWindow(bytes=2000), 0.0) is not None
    oldest = store.oldest_position("r:1 é")
    target = DirectoryTarget(tmp_path / "archive")
    ship(store, target, [(0, 300)])

    recover(target, tmp_path / "whole")
    recover(target, tmp_path / "mid", to_seq=("r:1 é", oldest + 5))

    whole = DocStore(KVLogStore(LmdbKV(tmp_path / "whole")), rebuild=rebuild)
    assert content(whole.load("r:1 é").updates) == content(updates)
    mid = DocStore(KVLogStore(LmdbKV(tmp_path / "mid")), rebuild=rebuild)
    assert content(mid.load("r:1 é").updates) == content(updates[: oldest + 5])
    with pytest.raises(StorageError, match=f"only from seq {oldest}"):
        recover(target, tmp_path / "before", to_seq=("r:1 é", oldest - 3))


def test_old_snapshots_are_pruned_but_the_base_the_log_continues_from_stays(
    tmp_path: Path,
) -> None:
    store, updates = typed_store(300)
    assert fold_room(store, "r:1 é", HistoryWindow(bytes=2000), 0.0) is not None
    base = store.oldest_position("r:1 é")
    target = DirectoryTarget(tmp_path / "archive")
    ship(store, target, [(0, base + 4)])  # the base snapshot, then the log after it
    manifest = read_manifest(target, "r:1 é")
    assert manifest is not None
    compacted = list(range(base + 4, 301, 4))  # a compaction every 4 entries, as shipped
    for seq in compacted:
        ship(store, target, [(seq - 4, seq)])
        manifest = read_manifest(target, "r:1 é")
        assert manifest is not None
        add_snapshot(target, manifest, seq, 0.0, store.state_at("r:1 é", seq))
        dropped = prune_snapshots(manifest, keep=3)
        write_manifest(target, manifest)
        for name in dropped:
            target.delete(f"{room_dir('r:1 é')}/{name}")

    assert manifest is not None
    assert sorted(s["seq"] for s in manifest.snapshots) == [base, *compacted[-3:]]
    files = {p.name for p in (tmp_path / "archive" / room_dir("r:1 é")).glob("snap-*")}
    assert files == {s["file"] for s in manifest.snapshots}, "pruned files are deleted"
    for cut in (base + 1, base + 6, compacted[-2] + 1, compacted[-1]):
        out = tmp_path / f"at-{cut}"
        recover(target, out, to_seq=("r:1 é", cut))
        at = DocStore(KVLogStore(LmdbKV(out)), rebuild=rebuild)
        assert content(at.load("r:1 é").updates) == content(updates[:cut]), cut
        assert verify(at).ok


@pytest.mark.parametrize(
    "tamper", ["flip a byte", "delete a segment", "escape the archive", "claim another room"]
)
def test_a_tampered_archive_is_refused_with_a_clear_error(tmp_path: Path, tamper: str) -> None:
    store, _ = typed_store(30)
    target = DirectoryTarget(tmp_path / "archive")
    ship(store, target, [(0, 10), (10, 30)])
    room = tmp_path / "archive" / room_dir("r:1 é")
    segment = sorted(room.glob("log-*"))[0]
    if tamper == "flip a byte":
        data = bytearray(segment.read_bytes())
        data[-1] ^= 0xFF
        segment.write_bytes(bytes(data))
        message = "fails its checksum"
    elif tamper == "delete a segment":
        segment.unlink()
        message = "is missing"
    elif tamper == "escape the archive":
        manifest = json.loads((room / "manifest.json").read_text())
        manifest["segments"][0]["file"] = "../../../outside.cbor"
        (room / "manifest.json").write_text(json.dumps(manifest))
        message = "bad file"
    else:  # a manifest copied into another name's directory
        manifest = json.loads((room / "manifest.json").read_text())
        manifest["room"] = "admin"
        (room / "manifest.json").write_text(json.dumps(manifest))
        message = "holds a manifest of 'admin'"
    with pytest.raises(StorageError, match=message):
        recover(target, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing half-recovered is left"
    assert [p.name for p in tmp_path.iterdir()] == ["archive"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    count=st.integers(1, 80),
    cuts=st.lists(st.integers(0, 80), min_size=1, max_size=6),
    target_seq=st.integers(1, 80),
)
def test_any_shipping_pattern_recovers_every_seq_exactly(
    tmp_path_factory: pytest.TempPathFactory, count: int, cuts: list[int], target_seq: int
) -> None:
    """Batches of any size, shipped again in part (as after a crash), in any order of
    their bounds: recovery to any seq equals the original's state at that seq."""
    store, updates = typed_store(count)
    tmp = tmp_path_factory.mktemp("archive")
    target = DirectoryTarget(tmp / "archive")
    bounds = sorted({min(c, count) for c in cuts} | {count})
    batches = list(zip([0, *bounds[:-1]], bounds, strict=True))
    batches += [(max(0, a - 3), b) for a, b in batches[:2]]  # shipped again
    orphan = Manifest("r:1 é", 0.0)  # a segment written, then the process died
    add_segment(target, orphan, store.entries("r:1 é", 0, max(1, count // 2)))
    ship(store, target, batches)
    seq = min(target_seq, count)
    recover(target, tmp / "out", to_seq=("r:1 é", seq))
    out = DocStore(KVLogStore(LmdbKV(tmp / "out")), rebuild=rebuild)
    assert out.require("r:1 é").last_seq == seq
    assert content(out.load("r:1 é").updates) == content(updates[:seq])
    assert verify(out).ok
    out.close()

"""`performer import` of a backup directory into another store, LMDB or Redis: every room
arrives whole (seqs, times, users, snapshots, named versions), `?at=` answers as on the
original, a second run changes nothing, and a target holding another room under one of
the names refuses the whole import, writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from engine.storage import DocStore
from engine.storage.backup import backup_lmdb
from engine.store import open_store
from harness.wire import edit
from server.cli import main
from tests.redis_process import RedisProcess

ROOMS = ("lobby", "notes", "r:1 é")


def _fill(data_dir: Path) -> dict[str, str]:
    """Three rooms with history, a snapshot in the middle and a named version."""
    store = open_store(data_dir=data_dir)
    texts = {}
    try:
        for n, room in enumerate(ROOMS):
            author: Doc[Any] = Doc()
            for i in range(30 + n):
                store.append(room, edit(author, f"{room}{i};"), f"user{i % 2}")
                if i == 15:
                    store.compact(room, force=True)
            store.set_meta(room, "label:mid", b"10")
            texts[room] = str(author.get("t", type=Text))
    finally:
        store.close()
    return texts


def _target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        return ["--redis", redis.url]
    return ["--data", str(tmp_path / "target")]


def _open(where: list[str]) -> DocStore:
    if where[0] == "--redis":
        return open_store(redis_url=where[1])
    return open_store(data_dir=where[1])


def performer(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The command line, run in this process (the parser and the command as shipped)."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = 2 if exc.code is None or isinstance(exc.code, str) else int(exc.code)
        if isinstance(exc.code, str):
            print(exc.code)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _text(state: bytes) -> str:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
def test_a_backup_imports_whole_and_answers_as_the_original(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = _fill(tmp_path / "live")
    backup_lmdb(tmp_path / "live", tmp_path / "backup")
    where = _target(backend, tmp_path, request)

    code, output = performer(capsys, "import", *where, str(tmp_path / "backup"))
    assert code == 0, output
    assert f"imported {len(ROOMS)} rooms" in output

    original, imported = open_store(data_dir=tmp_path / "live"), _open(where)
    try:
        for room in ROOMS:
            want, got = original.require(room), imported.require(room)
            assert (got.created, got.last_seq, got.log_bytes) == (
                want.created,
                want.last_seq,
                want.log_bytes,
            )
            assert imported.history(room, limit=100) == original.history(room, limit=100)
            assert imported.scan_meta(room, "label:") == [("label:mid", b"10")]
            assert imported.log.newest_snapshot_seq(room) == 16
            for seq in (1, 10, 16, 17, want.last_seq):
                assert _text(imported.state_at(room, seq)) == _text(original.state_at(room, seq))
            assert _text(imported.state_at(room, want.last_seq)) == texts[room]
    finally:
        original.close()
        imported.close()

    code, output = performer(capsys, "import", *where, str(tmp_path / "backup"))
    assert code == 0, output
    assert f"imported 0 rooms from {tmp_path / 'backup'} ({len(ROOMS)} already there)" in output


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
def test_another_room_under_a_backups_name_refuses_the_whole_import(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(tmp_path / "live")
    backup_lmdb(tmp_path / "live", tmp_path / "backup")
    where = _target(backend, tmp_path, request)
    target = _open(where)
    try:
        target.append("notes", edit(Doc(), "someone else's notes"), "eve")
    finally:
        target.close()

    code, output = performer(capsys, "import", *where, str(tmp_path / "backup"))

    assert code != 0
    assert "error: the target already has other rooms named 'notes': nothing was imported" in (
        output
    )
    assert "Traceback" not in output
    target = _open(where)
    try:
        assert [info.name for info in target.rooms()] == ["notes"]
        assert target.require("notes").last_seq == 1
    finally:
        target.close()


def test_bad_imports_are_refused_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(tmp_path / "live")
    backup_lmdb(tmp_path / "live", tmp_path / "backup")
    (tmp_path / "empty").mkdir()
    target = ["--data", str(tmp_path / "target")]
    cases = [
        (["import", *target, str(tmp_path / "empty")], "is not a backup"),
        (["import", *target, str(tmp_path / "missing")], "no export file or backup directory"),
        (["import", *target, "--room", "x", str(tmp_path / "backup")], "--room renames one"),
        (["import", "--data", str(tmp_path / "backup"), str(tmp_path / "backup")], "into itself"),
    ]
    for args, message in cases:
        code, output = performer(capsys, *args)
        assert code != 0 and message in output, (args, output)
        assert "Traceback" not in output
    if (tmp_path / "target").exists():
        store = _open(target)
        try:
            assert store.rooms() == []
        finally:
            store.close()

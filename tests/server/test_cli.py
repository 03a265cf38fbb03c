"""`performer token | verify | compact | export | import` as a user runs them."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
from pycrdt import Doc, Text

from engine.storage import DocStore, LmdbKV
from tests.engine.helpers import typing_updates

PERFORMER = [sys.executable, "-m", "server"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PERFORMER, *args], capture_output=True, text=True, timeout=60, check=False
    )


def make_store(path: Path, rooms: dict[str, str]) -> None:
    store = DocStore(LmdbKV(path))
    for i, (room, text) in enumerate(rooms.items()):
        for update in typing_updates(text, client_id=i + 1):
            store.append(room, update, "alice")
    store.kv.close()


def text_in(path: Path, room: str) -> str:
    store = DocStore(LmdbKV(path))
    doc: Doc[Any] = Doc()
    for update in store.load(room).updates:
        doc.apply_update(update)
    store.kv.close()
    return str(doc.get("t", type=Text))


def test_token_prints_a_signed_jwt_with_the_claims() -> None:
    secret = "s" * 40
    result = run(
        "token",
        "--secret",
        secret,
        "--room",
        "team-*",
        "--read-only",
        "--ttl",
        "60",
        "--user",
        "bob",
    )
    assert result.returncode == 0
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["room"] == "team-*" and claims["mode"] == "read" and claims["sub"] == "bob"


def test_verify_passes_a_healthy_store_and_reports_a_corrupt_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_store(data, {"a": "alpha", "b": "beta"})
    assert run("compact", "--data", str(data)).returncode == 0
    healthy = run("verify", "--data", str(data))
    assert healthy.returncode == 0, healthy.stdout
    assert "verified 2 rooms" in healthy.stdout
    kv = LmdbKV(data)
    key = struct.pack(">QQ", 2, 3)
    value = kv.get("log", key)
    assert value is not None
    kv.write([("log", key, value[:-2])])
    kv.close()
    broken = run("verify", "--data", str(data))
    assert broken.returncode == 1
    assert "room 'b'" in broken.stdout and "seq 3" in broken.stdout


def test_compact_writes_snapshots_that_keep_content(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_store(data, {"room": "compacted text"})
    result = run("compact", "--data", str(data), "--room", "room")
    assert result.returncode == 0 and "snapshot at seq 14" in result.stdout
    assert text_in(data, "room") == "compacted text"


def test_export_then_import_moves_a_room_between_stores(tmp_path: Path) -> None:
    source, target, file = tmp_path / "src", tmp_path / "dst", tmp_path / "room.cbor"
    make_store(source, {"room": "travelling"})
    assert run("export", "--data", str(source), "--room", "room", "-o", str(file)).returncode == 0
    assert run("import", "--data", str(target), str(file)).returncode == 0
    assert run("import", "--data", str(target), "--room", "copy", str(file)).returncode == 0
    assert text_in(target, "room") == text_in(target, "copy") == "travelling"
    again = run("import", "--data", str(target), str(file))  # idempotent content
    assert again.returncode == 0 and text_in(target, "room") == "travelling"


def test_tools_fail_clearly_on_bad_input(tmp_path: Path) -> None:
    missing = run("verify", "--data", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no data directory" in missing.stderr
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"not an export")
    bad_import = run("import", "--data", str(tmp_path / "d"), str(junk))
    assert bad_import.returncode == 1 and "error:" in bad_import.stderr
    make_store(tmp_path / "d2", {"x": "y"})
    no_room = run(
        "export", "--data", str(tmp_path / "d2"), "--room", "zzz", "-o", str(tmp_path / "o")
    )
    assert no_room.returncode == 1 and "does not exist" in no_room.stderr

"""`performer token | verify | compact | export | import | migrate` as a user runs them,
on an LMDB data directory and on a real Redis alike."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from pycrdt import Doc, Text

from engine.storage import DocStore
from engine.store import open_store
from tests.engine.helpers import typing_updates

PERFORMER = [sys.executable, "-m", "server"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PERFORMER, *args], capture_output=True, text=True, timeout=60, check=False
    )


class Where:
    """A store as the CLI names it (`--data DIR` or `--redis URL`) and as a test opens it."""

    def __init__(self, kind: str, path: Path, redis_url: str | None) -> None:
        self.kind, self.path, self.redis_url = kind, path, redis_url

    @property
    def args(self) -> list[str]:
        return (
            ["--redis", str(self.redis_url)] if self.kind == "redis" else ["--data", str(self.path)]
        )

    def open(self) -> DocStore:
        if self.kind == "redis":
            return open_store(redis_url=self.redis_url)
        return open_store(data_dir=self.path)

    def fill(self, rooms: dict[str, str]) -> None:
        store = self.open()
        for i, (room, text) in enumerate(rooms.items()):
            for update in typing_updates(text, client_id=i + 1):
                store.append(room, update, "alice")
        store.close()

    def text(self, room: str) -> str:
        store = self.open()
        doc: Doc[Any] = Doc()
        for update in store.load(room).updates:
            doc.apply_update(update)
        store.close()
        return str(doc.get("t", type=Text))


@pytest.fixture(params=["lmdb", "redis"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    yield Where(request.param, tmp_path / "data", url)


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


def test_verify_passes_a_healthy_store_and_reports_a_corrupt_record(where: Where) -> None:
    where.fill({"a": "alpha", "b": "beta"})
    assert run("compact", *where.args).returncode == 0
    healthy = run("verify", *where.args)
    assert healthy.returncode == 0, healthy.stdout
    assert "verified 2 rooms" in healthy.stdout
    store = where.open()
    store.log.append([("b", b"\x00\x00\x00\x00garbage")], 0.0)  # a torn record at seq 5
    store.close()
    broken = run("verify", *where.args)
    assert broken.returncode == 1
    assert "room 'b'" in broken.stdout and "seq 5" in broken.stdout


def test_compact_writes_snapshots_that_keep_content(where: Where) -> None:
    where.fill({"room": "compacted text"})
    result = run("compact", *where.args, "--room", "room")
    assert result.returncode == 0 and "room: snapshot written" in result.stdout
    store = where.open()
    assert store.load("room").snapshot_seq == 14
    store.close()
    assert where.text("room") == "compacted text"


def test_export_then_import_moves_a_room_between_stores(where: Where, tmp_path: Path) -> None:
    other, file = tmp_path / "dst", tmp_path / "room.cbor"
    where.fill({"room": "travelling"})
    store = where.open()
    store.set_meta("room", "label:v1", b"3")
    store.close()
    assert run("export", *where.args, "--room", "room", "-o", str(file)).returncode == 0
    assert run("import", "--data", str(other), str(file)).returncode == 0
    assert run("import", *where.args, "--room", "copy", str(file)).returncode == 0
    target = Where("lmdb", other, None)
    assert target.text("room") == where.text("copy") == "travelling"
    again = run("import", "--data", str(other), str(file))  # idempotent content
    assert again.returncode == 0 and target.text("room") == "travelling"
    imported = target.open()
    assert imported.get_meta("room", "label:v1") == b"3"
    imported.close()


def test_tools_fail_clearly_on_bad_input(tmp_path: Path) -> None:
    missing = run("verify", "--data", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no data directory" in missing.stderr
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"not an export")
    bad_import = run("import", "--data", str(tmp_path / "d"), str(junk))
    assert bad_import.returncode == 1 and "error:" in bad_import.stderr
    Where("lmdb", tmp_path / "d2", None).fill({"x": "y"})
    no_room = run(
        "export", "--data", str(tmp_path / "d2"), "--room", "zzz", "-o", str(tmp_path / "o")
    )
    assert no_room.returncode == 1 and "does not exist" in no_room.stderr
    unreachable = run("verify", "--redis", "redis://127.0.0.1:1/0")
    assert unreachable.returncode == 1 and "Redis" in unreachable.stderr


def test_migrate_copies_lmdb_rooms_into_redis_once(tmp_path: Path, redis_server: Any) -> None:
    source = Where("lmdb", tmp_path / "lmdb", None)
    source.fill({"one": "first room", "two": "second"})
    store = source.open()
    store.compact("one", force=True)
    store.close()
    args = ["migrate", "--data", str(source.path), "--redis", redis_server.url]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "one: copied 10 updates" in first.stdout and "two: copied 6 updates" in first.stdout
    assert "copied 0 updates" in run(*args).stdout
    store = source.open()
    store.append("two", typing_updates("second!", client_id=2)[-1], "alice")
    store.close()
    assert "two: copied 1 updates" in run(*args).stdout
    target = Where("redis", tmp_path, redis_server.url)
    assert target.text("one") == "first room" and target.text("two") == "second!"
    history = target.open().history("one", 0, 3)
    assert [h.user for h in history] == ["alice"] * 3


def test_bench_takes_the_suites_options_as_they_are() -> None:
    from server.cli import parse_args

    argv = ["bench", "--servers", "ours,ours-rules", "--workloads", "T", "--quick"]
    assert parse_args(argv).rest == argv[1:]
    assert parse_args(["bench"]).rest == []
    with pytest.raises(SystemExit):
        parse_args(["token", "--no-such-option"])

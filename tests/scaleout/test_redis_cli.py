"""`performer verify | compact | export | import --redis` against a real Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from engine.storage import Append
from server.metrics import Metrics
from server.redis_backend import RedisBackend, key
from tests.engine.helpers import content, typing_updates
from tests.scaleout.conftest import RedisProcess


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def fill(url: str, room: str, text: str) -> None:
    backend = RedisBackend(url, Metrics())
    await backend.start()
    try:
        await backend.commit([Append(room, u, "writer") for u in typing_updates(text)])
    finally:
        await backend.close()


async def stored_text(url: str, room: str) -> str:
    backend = RedisBackend(url, Metrics())
    await backend.start()
    try:
        return str(content((await backend.load(room)).updates)["t"])
    finally:
        await backend.close()


def test_compact_verify_export_import_on_redis(redis_server: RedisProcess, tmp_path: Path) -> None:
    url = redis_server.url
    asyncio.run(fill(url, "alpha", "shared room"))
    compacted = run("compact", "--redis", url)
    assert compacted.returncode == 0 and "alpha: snapshot written" in compacted.stdout
    verified = run("verify", "--redis", url)
    assert verified.returncode == 0 and "verified 1 rooms" in verified.stdout
    exported = tmp_path / "alpha.cbor"
    assert run("export", "--redis", url, "--room", "alpha", "-o", str(exported)).returncode == 0
    assert run("import", "--redis", url, "--room", "beta", str(exported)).returncode == 0
    assert run("import", "--data", str(tmp_path / "lmdb"), str(exported)).returncode == 0
    assert asyncio.run(stored_text(url, "beta")) == "shared room"
    listed = run(
        "export",
        "--data",
        str(tmp_path / "lmdb"),
        "--room",
        "alpha",
        "-o",
        str(tmp_path / "back.cbor"),
    )
    assert listed.returncode == 0


def test_verify_on_redis_reports_a_corrupt_record(redis_server: RedisProcess) -> None:
    url = redis_server.url
    asyncio.run(fill(url, "bad", "damaged"))

    async def corrupt() -> None:
        backend = RedisBackend(url, Metrics())
        await backend.start()
        try:
            await backend.redis.xadd(key("log", "bad"), {"r": b"garbage", "n": b"x"}, id="0-99")
            await backend.redis.set(key("seq", "bad"), 99)
        finally:
            await backend.close()

    asyncio.run(corrupt())
    broken = run("verify", "--redis", url)
    assert broken.returncode == 1 and "room 'bad'" in broken.stdout

"""Online backups of a running server, as an operator takes them: `performer backup`
while 50 rooms are edited, on LMDB and on Redis; the backup holds every edit
acknowledged before it began, passes `performer verify`, and a server started on it
serves every room. Scheduled backups keep N, report metrics and log failures."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from engine.store import open_store
from harness.ops_load import Load, room_text, wait_for_edits
from server.app import open_storage
from server.backups import PREFIX, ScheduledBackups
from server.config import Config
from server.metrics import Metrics
from tests.conftest import StartServer
from tests.redis_process import RedisProcess

PERFORMER = [sys.executable, "-m", "server"]
ROOMS = 50


async def performer(*args: str, deadline: float = 120.0) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *PERFORMER, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(deadline):
        output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode()


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_a_backup_under_load_holds_every_acknowledged_edit(
    backend: str, server_factory: StartServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source = ["--data", str(tmp_path / "live")]
    extra: list[str] = []
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        source = extra = ["--redis", redis.url]
    live = server_factory(*extra, data_dir=tmp_path / "live")
    load = Load(live.url, ROOMS)
    await load.start()
    try:
        await wait_for_edits(load, at_least=3)
        began = time.time()
        code, output = await performer("backup", *source, str(tmp_path / "copy"))
        await wait_for_edits(load, at_least=len(load.writers[0].acked) + 2)
    finally:
        await load.stop()
    assert code == 0, output
    assert f"backed up {ROOMS} rooms" in output

    manifest = json.loads((tmp_path / "copy" / "backup.json").read_text())
    for writer in load.writers:
        before = writer.acked_before(began)
        assert before, f"{writer.room}: nothing acknowledged before the backup"
        assert manifest["rooms"][writer.room] >= before[-1].seq
    code, output = await performer("verify", "--data", str(tmp_path / "copy"))
    assert code == 0 and f"verified {ROOMS} rooms" in output, output

    restored = server_factory(data_dir=tmp_path / "copy")
    for writer in load.writers:
        text = await room_text(restored.url, writer.room)
        missing = [a.token for a in writer.acked_before(began) if a.token not in text]
        assert missing == [], f"{writer.room}: acknowledged before the backup, not in it"


async def test_backup_refuses_a_destination_with_content(
    server_factory: StartServer, tmp_path: Path
) -> None:
    server_factory(data_dir=tmp_path / "live")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data.mdb").write_bytes(b"someone else's")
    code, output = await performer(
        "backup", "--data", str(tmp_path / "live"), str(tmp_path / "out")
    )
    assert code == 1 and "not empty" in output
    assert (tmp_path / "out" / "data.mdb").read_bytes() == b"someone else's"
    code, output = await performer(
        "backup", "--data", str(tmp_path / "nothing"), str(tmp_path / "o2")
    )
    assert code == 1 and "no LMDB data directory" in output


async def _metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        body = await (await http.get(f"{url}/metrics")).text()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def test_scheduled_backups_keep_the_newest_and_report_metrics(
    server_factory: StartServer, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    server = server_factory(
        "--backup-dir", str(backups), "--backup-every", "1", "--backup-keep", "2",
        data_dir=tmp_path / "live",
    )  # fmt: skip
    load = Load(server.url, 3)
    await load.start()
    try:
        async with asyncio.timeout(60):
            while await _metric(server.url, "performer_backup_failures_total") == 0 and (
                len(list(backups.glob(PREFIX + "*"))) < 2 or load.total() < 10
            ):
                await asyncio.sleep(0.2)
            first = await _metric(server.url, "performer_backup_last_success_timestamp_seconds")
            while (
                await _metric(server.url, "performer_backup_last_success_timestamp_seconds")
                <= first
            ):
                await asyncio.sleep(0.2)
    finally:
        await load.stop()
    assert await _metric(server.url, "performer_backup_failures_total") == 0
    assert await _metric(server.url, "performer_backup_bytes") > 0
    assert await _metric(server.url, "performer_backup_duration_seconds") > 0
    assert server.stop() == 0  # no pruning while the newest is verified
    kept = sorted(p for p in backups.glob(PREFIX + "*") if p.is_dir())
    assert 1 <= len(kept) <= 2, kept
    code, output = await performer("verify", "--data", str(kept[-1]))
    assert code == 0, output


async def test_a_failed_scheduled_backup_is_one_error_line_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the backups should go")
    config = Config(data_dir=tmp_path / "live", backup_dir=blocker)
    metrics = Metrics()
    store, _fanout = open_storage(config, metrics)
    await store.start()
    try:
        with caplog.at_level(logging.ERROR, logger="server.backups"):
            assert await ScheduledBackups(config, store, metrics).run_once() is None
    finally:
        await store.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(blocker) in errors[0] and "failed" in errors[0], errors
    assert metrics.backup_failures._value.get() == 1
    assert open_store(data_dir=tmp_path / "live").rooms() == []


async def test_a_scheduled_backup_of_redis_is_a_data_directory_with_every_room(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    source = open_store(redis_url=redis_server.url)
    for i in range(3):
        source.append(f"room-{i}", b"\x01\x01\x07\x00\x04\x01\x01t\x01a\x00", "ann")
    source.close()
    config = Config(redis_url=redis_server.url, backup_dir=tmp_path / "backups", backup_keep=1)
    metrics = Metrics()
    store, _fanout = open_storage(config, metrics)
    await store.start()
    try:
        backups = ScheduledBackups(config, store, metrics)
        first = await backups.run_once()
        second = await backups.run_once()
    finally:
        await store.close()
    assert first is not None and second is not None
    assert second.rooms == {"room-0": 1, "room-1": 1, "room-2": 1}
    assert sorted(p for p in (tmp_path / "backups").iterdir()) == [second.path], "keep 1"
    code, output = await performer("verify", "--data", str(second.path))
    assert code == 0 and "verified 3 rooms" in output, output

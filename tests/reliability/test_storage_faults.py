"""Storage faults under a real server process: a disk that stops taking writes, a torn
snapshot record, a corrupt log record.

The full disk is the process's file size limit (RLIMIT_FSIZE, set from outside with
prlimit; CPython ignores SIGXFSZ, so LMDB's write fails with EFBIG and its commit with
EIO): bounded, no root, no tmpfs.
"""

from __future__ import annotations

import asyncio
import re
import resource
from typing import Any

import aiohttp
from pycrdt import Doc, Text

from engine.protocol import Update
from harness.common import durable_doc, health, missing_clocks, verify_store
from harness.crash_loop import compactions
from harness.wire import WireClient, connect, edit
from tests.conftest import ServerProcess
from tests.reliability.helpers import (
    overwrite_record,
    read_until_closed,
    resync,
    room_records,
)


def limit_file_size(server: ServerProcess, soft: int) -> None:
    """Set the running server's soft file size limit (the hard one stays unlimited, so
    raising it back needs no privilege)."""
    assert server.process is not None
    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))


async def test_full_disk_fails_the_commit_acks_nothing_and_the_client_resends(
    server: ServerProcess,
) -> None:
    async with connect(server.url, "disk", ack=True) as writer, connect(server.url, "disk") as eye:
        await writer.sync()
        await eye.sync()
        for i in range(20):
            await writer.send(Update(edit(writer.doc, f"{i};")))
        await writer.wait_saved(20)
        size = (server.data_dir / "data.mdb").stat().st_size
        limit_file_size(server, size + 16 * 1024)
        saved: list[int] = []
        reading = asyncio.create_task(read_until_closed(writer, saved))
        watching = asyncio.create_task(read_until_closed(eye, []))
        sent = 20
        for i in range(2000):  # 1 MB of edits cannot fit in 16 KB
            if reading.done():
                break
            try:
                await writer.send(Update(edit(writer.doc, f"[{i}]" + "x" * 500)))
            except (aiohttp.ClientError, ConnectionError):
                break
            sent += 1
        # The writer may still be sending when the server closes, and the server then
        # drops the TCP connection: its close frame can be lost to the reset (1006).
        assert await asyncio.wait_for(reading, 30) in (4503, 1006)
        assert await asyncio.wait_for(watching, 30) == 4503
    acked = max(saved, default=20)
    assert acked < sent, "every edit was acknowledged although the disk was full"
    assert (await health(server.url))["status"] == "ok"
    stored = await durable_doc(server.url, "disk")
    assert missing_clocks(stored, eye.doc) == {}, "the observer saw an edit that is not stored"
    assert str(stored.get("t", type=Text)).count(";") == 20
    limit_file_size(server, resource.RLIM_INFINITY)
    async with connect(server.url, "disk", ack=True) as again:
        await resync(again, writer.doc, saved=True)
    stored = await durable_doc(server.url, "disk")
    assert str(stored.get("t", type=Text)) == str(writer.doc.get("t", type=Text))
    assert server.stop() == 0
    code, output = verify_store(server.data_dir)
    assert code == 0, output


async def write_tokens(server: ServerProcess, room: str, count: int) -> str:
    async with connect(server.url, room, ack=True) as client:
        await client.sync()
        for i in range(count):
            await client.send(Update(edit(client.doc, f"{i};")))
        await client.wait_saved(count, timeout=60)
        return client.text()


async def append_tokens(client: WireClient, count: int) -> None:
    start = client.text().count(";")
    for i in range(start, start + count):
        await client.send(Update(edit(client.doc, f"{i};")))
    await client.wait_saved(client.text().count(";"), timeout=60)


async def synced_text(server: ServerProcess, room: str) -> str:
    async with connect(server.url, room) as client:
        await client.sync()
        return client.text()


async def test_torn_newest_snapshot_falls_back_to_the_previous_one_and_the_log(
    server: ServerProcess,
) -> None:
    async with connect(server.url, "torn", ack=True) as client:
        await client.sync()
        for wanted in (1, 2):  # compaction runs after 1,000 updates, in the background
            await append_tokens(client, 1100)
            async with asyncio.timeout(30):
                while await compactions(server.url) < wanted:
                    await asyncio.sleep(0.05)
        await append_tokens(client, 100)  # a log tail after the newest snapshot
        expected = client.text()
    assert server.stop() == 0
    snapshots = room_records(server.data_dir, "torn", "snapshots")
    assert len(snapshots) >= 2, f"expected two snapshots, found {[s for s, _ in snapshots]}"
    newest_seq, newest = snapshots[-1]
    overwrite_record(server.data_dir, "torn", "snapshots", newest_seq, newest[: len(newest) // 2])
    server.restart()
    assert await synced_text(server, "torn") == expected
    doc: Doc[Any] = await durable_doc(server.url, "torn")
    assert str(doc.get("t", type=Text)) == expected
    await write_tokens(server, "torn", 1)  # the room still takes writes after the fallback
    server.kill()


async def test_verify_reports_a_torn_snapshot(server: ServerProcess) -> None:
    await write_tokens(server, "torn", 1100)
    assert server.stop() == 0
    seq, value = room_records(server.data_dir, "torn", "snapshots")[-1]
    overwrite_record(server.data_dir, "torn", "snapshots", seq, value[: len(value) // 2])
    code, output = verify_store(server.data_dir)
    assert code != 0 and f"snapshot at seq {seq}" in output, output


async def test_corrupt_log_record_refuses_the_room_and_spares_the_others(
    server: ServerProcess,
) -> None:
    await write_tokens(server, "broken", 50)
    intact = await write_tokens(server, "intact", 50)
    assert server.stop() == 0
    values = room_records(server.data_dir, "broken", "log")
    seq, value = values[-1]  # the last value: one record, or a run of records ending at seq
    before = values[-2][0] if len(values) > 1 else 0
    overwrite_record(server.data_dir, "broken", "log", seq, value[:-3] + b"\xff\xff\xff")
    server.restart()
    for _ in range(2):  # refused every time, never replaced by an empty room
        async with connect(server.url, "broken") as client:
            assert await client.wait_closed() == 4503
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{server.url}/v1/rooms/broken/state")
        assert response.status == 503
        body = await response.json()
        named = re.search(r"at seq (\d+)", body["error"])
        assert "broken" in body["error"] and named, body["error"]
        assert before < int(named.group(1)) <= seq  # the first seq that value held
    assert await synced_text(server, "intact") == intact
    assert server.stop() == 0
    assert [s for s, _ in room_records(server.data_dir, "broken", "log")][-1] == seq
    code, output = verify_store(server.data_dir)
    assert code != 0 and "broken" in output

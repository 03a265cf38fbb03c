"""Small helpers for the reliability tests: a client that resends like a real one,
stored-record surgery, and waits with deadlines."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc

from engine.protocol import Saved, SyncStep1, SyncStep2
from engine.storage import KVLogStore, LmdbKV
from harness.wire import WireClient

_U64 = struct.Struct(">Q")
_ROOM_SEQ = struct.Struct(">QQ")


async def resync(client: WireClient, doc: Doc[Any], *, saved: bool = False) -> None:
    """What a real client does on (re)connect: answer the server's SyncStep1 with
    everything `doc` has that the server lacks, and ask for what it lacks. With `saved`,
    also wait until that resend is acknowledged (the ack may come before or after the
    SyncStep2 answer)."""
    greeting = await client.wait_for(SyncStep1)
    assert isinstance(greeting, SyncStep1)
    await client.send(SyncStep2(bytes(doc.get_update(greeting.state_vector))))
    await client.send(SyncStep1(bytes(doc.get_state())))
    answered = acknowledged = False
    async with asyncio.timeout(30):
        while not (answered and (acknowledged or not saved)):
            message = await client.recv()
            assert message is not None, f"closed with {client.close_code}"
            answered = answered or isinstance(message, SyncStep2)
            acknowledged = acknowledged or (isinstance(message, Saved) and message.count >= 1)


async def read_until_closed(client: WireClient, saved: list[int]) -> int | None:
    """Read everything until the server closes; record "saved" counts; the close code."""
    try:
        while (message := await client.recv(timeout=30)) is not None:
            if isinstance(message, Saved):
                saved.append(message.count)
    except (aiohttp.ClientError, ConnectionError):
        return None
    return client.close_code


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition with a deadline (for state only observable by polling)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def room_records(data_dir: Path, room: str, db: str) -> list[tuple[int, bytes]]:
    """(seq, raw value) of a room's `log` or `snapshots` records, read with the server
    stopped."""
    kv = LmdbKV(data_dir)
    try:
        room_id = KVLogStore(kv)._room_id(room)
        assert room_id is not None, f"room {room!r} is not stored"
        return [(_ROOM_SEQ.unpack(k)[1], v) for k, v in kv.scan(db, _U64.pack(room_id))]
    finally:
        kv.close()


def overwrite_record(data_dir: Path, room: str, db: str, seq: int, value: bytes) -> None:
    """Replace one stored record's bytes (a torn or corrupted write), server stopped."""
    kv = LmdbKV(data_dir)
    try:
        room_id = KVLogStore(kv)._room_id(room)
        assert room_id is not None
        kv.write([(db, _ROOM_SEQ.pack(room_id, seq), value)])
    finally:
        kv.close()

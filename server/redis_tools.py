"""`performer verify | compact | export | import --redis URL`: the store tools for rooms
kept in Redis, with the same checks and file format as for LMDB."""

from __future__ import annotations

from engine.errors import EngineError, RoomNotFound
from engine.storage import Append
from engine.storage.tools import VerifyReport, export_file, read_export, same_document
from server.metrics import Metrics
from server.redis_backend import RedisBackend

IMPORT_CHUNK = 1000


async def _open(url: str) -> RedisBackend:
    backend = RedisBackend(url, Metrics())
    await backend.start()
    return backend


async def verify_redis(url: str) -> VerifyReport:
    """Decode every stream and snapshot record; where the stream is whole, check that
    snapshot + tail and the full stream build the same document."""
    report = VerifyReport()
    backend = await _open(url)
    try:
        for meta in await backend.rooms():
            report.rooms += 1
            try:
                loaded = await backend.load(meta.name)
                report.records += len(loaded.updates)
                if loaded.last_seq != meta.last_seq:
                    report.problems.append(
                        f"room {meta.name!r}: stream ends at "
                        f"{loaded.last_seq}, counter says {meta.last_seq}"
                    )
                if loaded.snapshot_seq:
                    full = await backend.state_at(meta.name, meta.last_seq)
                    if not same_document(loaded.updates, [full]):
                        report.problems.append(
                            f"room {meta.name!r}: snapshot + tail differs from the stream"
                        )
            except (EngineError, ValueError) as exc:
                report.problems.append(f"room {meta.name!r}: {exc}")
    finally:
        await backend.close()
    return report


async def compact_redis(url: str, room: str | None) -> list[tuple[str, bool]]:
    backend = await _open(url)
    try:
        names = [room] if room else [m.name for m in await backend.rooms()]
        return [(name, await backend.compact(name)) for name in names]
    finally:
        await backend.close()


async def export_redis(url: str, room: str) -> bytes:
    backend = await _open(url)
    try:
        meta = await backend.meta(room)
        if meta is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        loaded = await backend.load(room)
        base = loaded.updates[0] if loaded.snapshot_seq else None
        first = await backend.first_seq(room)
        records = await backend.log_records(room, first - 1 if first else loaded.last_seq)
        return export_file(room, meta.created, base, records)
    finally:
        await backend.close()


async def import_redis(url: str, data: bytes, room: str | None) -> tuple[str, int]:
    name, appends = read_export(data, room)
    backend = await _open(url)
    try:
        for start in range(0, len(appends), IMPORT_CHUNK):
            chunk: list[Append] = appends[start : start + IMPORT_CHUNK]
            await backend.commit(chunk)
    finally:
        await backend.close()
    return name, len(appends)

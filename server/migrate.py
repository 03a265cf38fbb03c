"""`performer migrate`: copy LMDB rooms into Redis, safely re-runnable.

Each room's copy position is kept in Redis (`performer:migrated:{room}`), so a second run
copies only what the LMDB log gained since; the updates go through the same append path
as live edits (new Redis seqs, users and timestamps of the original records kept in the
record map only as the user field).
"""

from __future__ import annotations

from engine.storage import Append, DocStore
from server.metrics import Metrics
from server.redis_backend import PREFIX, RedisBackend

CHUNK = 1000


async def migrate(store: DocStore, url: str) -> list[tuple[str, int]]:
    """Copy every room of `store`; returns (room, updates copied) for each."""
    backend = RedisBackend(url, Metrics())
    await backend.start()
    try:
        return [
            (meta.name, await _migrate_room(store, backend, meta.name)) for meta in store.rooms()
        ]
    finally:
        await backend.close()


async def _migrate_room(store: DocStore, backend: RedisBackend, room: str) -> int:
    marker = f"{PREFIX}migrated:{room}"
    done = int(await backend.redis.get(marker) or 0)
    loaded = store.load(room)
    appends: list[Append]
    if done == 0 and loaded.snapshot_seq and not store.retention.keep_log:
        appends = [Append(room, loaded.updates[0])]  # the trimmed log lives in the snapshot
        records = store.log_records(room, after=loaded.snapshot_seq)
    else:
        appends = []
        records = store.log_records(room, after=done)
    appends += [Append(room, r.update, r.user, r.clients) for r in records]
    for start in range(0, len(appends), CHUNK):
        await backend.commit(appends[start : start + CHUNK])
    await backend.redis.set(marker, loaded.last_seq)
    return len(appends)

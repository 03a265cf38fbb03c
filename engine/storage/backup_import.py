"""`performer import` of a backup: every room of a backup directory into another store.

A backup (`performer backup`, scheduled backups, `performer recover`'s output) is an LMDB
data directory. `serve --data BACKUP` serves it as it is; importing it copies its rooms,
each whole, into an existing store (LMDB or Redis): the way back from a backup for a
deployment that runs on Redis, or into a store that has other rooms. Each room keeps its
seqs, times, snapshots, named versions and delivery cursors (`put_room`), so history and
`?at=` answer as they did when the backup was taken, and hooks and webhooks resume where
they were.

A room the target already has is left as it is when it is the same room (same creation
time, at least as far along: an import run twice), and refused otherwise, before anything
is written: an import never mixes two rooms' histories under one name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import StorageError
from engine.storage.contract import LogStore, RoomInfo
from engine.storage.kv_log import KVLogStore
from engine.storage.lmdb_kv import LmdbKV

SHOWN_CONFLICTS = 5


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: dict[str, int] = field(default_factory=dict)  # room -> last seq
    already: list[str] = field(default_factory=list)  # the same room was there already


def import_backup(source: str | os.PathLike[str], target: LogStore) -> ImportResult:
    """Copy every room of the backup (or stopped data directory) at `source` into `target`.

    Raises:
        StorageError: `source` is not an LMDB data directory, or `target` holds another
            room under one of its names (nothing is written then).
    """
    path = Path(source)
    if not (path / "data.mdb").is_file():
        raise StorageError(f"{path} is not a backup (no LMDB data directory there)")
    store = KVLogStore(LmdbKV(path))
    try:
        infos = [info for room in store.rooms() if (info := store.info(room)) is not None]
        already, conflicts = _present(infos, target)
        if conflicts:
            shown = ", ".join(repr(room) for room in conflicts[:SHOWN_CONFLICTS])
            more = len(conflicts) - SHOWN_CONFLICTS
            raise StorageError(
                f"the target already has other rooms named {shown}"
                + (f" and {more} more" if more > 0 else "")
                + ": nothing was imported"
            )
        imported = {}
        for info in infos:
            if info.name in already:
                continue
            dump = store.dump_room(info.name)
            if dump is not None:
                target.put_room(dump)
                imported[info.name] = dump.last_seq
    finally:
        store.close()
    return ImportResult(imported, sorted(already))


def _present(infos: list[RoomInfo], target: LogStore) -> tuple[set[str], list[str]]:
    """The rooms the target has already (the same ones), and those it has differently."""
    already, conflicts = set(), []
    for info in infos:
        there = target.info(info.name)
        if there is None:
            continue
        if there.created == info.created and there.last_seq >= info.last_seq:
            already.add(info.name)
        else:
            conflicts.append(info.name)
    return already, conflicts

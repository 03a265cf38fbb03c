"""The store commands (verify, compact, export, import, migrate) and the small ones.

Each opens a DocStore on LMDB (`--data`) or Redis (`--redis`) and calls the one
implementation in engine/storage/tools.py, so both backends behave the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.errors import StorageError
from engine.storage import DocStore
from engine.storage.backup_import import import_backup
from engine.storage.tools import (
    compact_all,
    export_room,
    import_room,
    migrate,
)
from engine.storage.tools import (
    verify as verify_store,
)
from engine.store import open_store
from server.auth import issue_token
from server.delivery import parked_rooms, unpark
from server.webhooks import WebhookConsumer


def _open(args: argparse.Namespace, *, create: bool = False) -> DocStore:
    if args.redis:
        return open_store(redis_url=args.redis)
    data: Path = args.data
    if not create and not data.exists():
        raise SystemExit(f"error: no data directory at {data}")
    return open_store(data_dir=data)


def token(args: argparse.Namespace) -> int:
    print(
        issue_token(
            args.secret,
            args.room,
            read_only=args.read_only,
            ttl=args.ttl,
            user=args.user,
            admin=args.admin,
        )
    )
    return 0


def verify(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        report = verify_store(store)
    finally:
        store.close()
    for problem in report.problems:
        print(f"MISMATCH {problem}")
    outcome = "ok" if report.ok else f"{len(report.problems)} problems"
    print(f"verified {report.rooms} rooms, {report.records} records: {outcome}")
    return 0 if report.ok else 1


def compact(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        for name, written in compact_all(store, args.room):
            print(f"{name}: {'snapshot written' if written else 'already compact or busy'}")
    finally:
        store.close()
    return 0


def export(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        data = export_room(store, args.room)
    finally:
        store.close()
    args.output.write_bytes(data)
    print(f"exported {args.room} ({len(data)} bytes) to {args.output}")
    return 0


def load(args: argparse.Namespace) -> int:
    """An export file (one room), or a backup directory (every room in it, whole)."""
    if args.input.is_dir():
        return _load_backup(args)
    if not args.input.is_file():
        raise SystemExit(f"error: no export file or backup directory at {args.input}")
    store = _open(args, create=True)
    try:
        name, count = import_room(store, args.input.read_bytes(), args.room)
    finally:
        store.close()
    print(f"imported {count} updates into room {name}")
    return 0


def _load_backup(args: argparse.Namespace) -> int:
    if args.room is not None:
        raise SystemExit("error: --room renames one exported room; a backup keeps its names")
    if args.data is not None and args.data.resolve() == args.input.resolve():
        raise SystemExit("error: a backup cannot be imported into itself")
    store = _open(args, create=True)
    try:
        result = import_backup(args.input, store.log)
    except StorageError as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        store.close()
    for room, seq in sorted(result.imported.items()):
        print(f"{room}: imported up to seq {seq}")
    print(f"imported {len(result.imported)} rooms from {args.input}"
          + (f" ({len(result.already)} already there)" if result.already else ""))  # fmt: skip
    return 0


def webhooks(args: argparse.Namespace) -> int:
    """Parked webhook deliveries (a running server resumes an unparked room within
    seconds; a stopped one when it starts)."""
    store = _open(args)
    try:
        parked = parked_rooms(store, WebhookConsumer.name)
        if args.retry:
            rooms = [p.room for p in parked] if args.retry == "*" else [args.retry]
            for room in rooms:
                done = unpark(store, WebhookConsumer.name, room)
                print(f"{room}: {'will be retried' if done else 'was not parked'}")
            return 0
        for p in parked:
            print(f"{p.room}: parked at seq {p.from_seq}..{p.to_seq} after {p.attempts} "
                  f"attempts: {p.error}")  # fmt: skip
        print(f"{len(parked)} parked rooms")
    finally:
        store.close()
    return 0


def migrate_rooms(args: argparse.Namespace) -> int:
    if not args.data.exists():
        raise SystemExit(f"error: no data directory at {args.data}")
    source, target = open_store(data_dir=args.data), open_store(redis_url=args.redis)
    try:
        for room, copied in migrate(source, target):
            print(f"{room}: copied {copied} updates")
    finally:
        source.close()
        target.close()
    return 0


def chat(args: argparse.Namespace) -> int:
    import asyncio

    from engine.client.chat import run_chat

    return int(asyncio.run(run_chat(args.url, args.room, args.user, args.token, args.store)))


def bench(args: argparse.Namespace) -> int:
    """The suite lives beside the product, not in it: run it as its own program."""
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks", *args.rest])
    return 1  # not reached

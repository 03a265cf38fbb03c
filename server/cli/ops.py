"""The operations commands: `performer backup` and `performer recover`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from engine.storage.archive import DirectoryTarget
from engine.storage.backup import backup_lmdb, backup_redis
from engine.storage.recover import recover


def add_backup(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup", help="copy a live store (LMDB or Redis) into a new LMDB data directory"
    )
    where = backup.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="the LMDB data directory (the server may be running)")
    where.add_argument("--redis", help="redis://HOST:PORT/DB")
    backup.add_argument("out", help="a new (or empty) directory: usable as `serve --data`")
    backup.set_defaults(func=backup_command)


def backup_command(args: argparse.Namespace) -> int:
    if args.redis:
        result = backup_redis(args.redis, args.out)
    else:
        result = backup_lmdb(args.data, args.out)
    print(
        f"backed up {len(result.rooms)} rooms ({result.bytes} bytes) to {result.path} "
        f"in {result.seconds:.2f} s"
    )
    return 0


def add_recover(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "recover", help="rebuild a data directory from an archive (serve --archive)"
    )
    command.add_argument("--archive", type=Path, required=True, help="the archive directory")
    command.add_argument("--out", type=Path, required=True, help="a new data directory")
    point = command.add_mutually_exclusive_group()
    point.add_argument("--to-time", type=iso_time, default=None, metavar="ISO8601",
                       help="every room as it was then (UTC unless the time says)")  # fmt: skip
    point.add_argument("--to-seq", type=room_seq, default=None, metavar="ROOM:SEQ",
                       help="ROOM up to SEQ, every other room whole")  # fmt: skip
    command.set_defaults(func=recover_command)


def iso_time(raw: str) -> float:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def room_seq(raw: str) -> tuple[str, int]:
    room, sep, seq = raw.rpartition(":")
    if not sep or not room or not seq.isdigit():
        raise argparse.ArgumentTypeError(f"{raw!r} is not ROOM:SEQ")
    return room, int(seq)


def recover_command(args: argparse.Namespace) -> int:
    if not args.archive.is_dir():
        raise SystemExit(f"error: no archive at {args.archive}")
    rooms = recover(DirectoryTarget(args.archive), args.out, to_time=args.to_time,
                    to_seq=args.to_seq)  # fmt: skip
    for room, seq in sorted(rooms.items()):
        print(f"{room}: recovered up to seq {seq}")
    print(f"recovered {len(rooms)} rooms into {args.out}")
    return 0

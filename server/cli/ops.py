"""The operations commands: `performer backup` (and, with the archive, `recover`)."""

from __future__ import annotations

import argparse

from engine.storage.backup import backup_lmdb, backup_redis


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

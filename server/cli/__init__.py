"""`performer`: serve | token | verify | compact | export | import | chat | bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from engine.errors import EngineError
from engine.storage import DocStore, LmdbKV, Retention
from engine.storage.tools import export_room, import_room, verify
from server.app import create_app
from server.auth import issue_token
from server.config import Config, Limits

log = logging.getLogger("performer")
DEFAULT_LIMITS = Limits()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PERFORMER_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _store_options(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", type=Path, help="an LMDB data directory")
    where.add_argument("--redis", help="redis://HOST:PORT/DB: rooms shared through Redis")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="performer", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the sync server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--data", type=Path, default=Path("./data"))
    serve.add_argument("--auth-secret", default=os.environ.get("PERFORMER_AUTH_SECRET"))
    serve.add_argument(
        "--idle-unload",
        type=float,
        default=30.0,
        help="seconds a room without clients stays in memory",
    )
    serve.add_argument("--max-frame-bytes", type=int, default=DEFAULT_LIMITS.max_frame_bytes)
    serve.add_argument("--max-update-bytes", type=int, default=DEFAULT_LIMITS.max_update_bytes)
    serve.add_argument("--max-doc-bytes", type=int, default=DEFAULT_LIMITS.max_doc_bytes)
    serve.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_LIMITS.messages_per_second,
        help="messages per second per connection before reading slows down",
    )
    serve.add_argument(
        "--send-buffer-bytes",
        type=int,
        default=DEFAULT_LIMITS.send_buffer_bytes,
        help="a client that stops reading is disconnected once this much is queued for it",
    )
    serve.add_argument(
        "--redis",
        default=os.environ.get("PERFORMER_REDIS"),
        help="redis://HOST:PORT/DB: share rooms with other processes",
    )
    serve.add_argument(
        "--trim-log",
        action="store_true",
        help="drop log entries once a snapshot covers them (no time travel "
        "before the newest snapshot)",
    )
    serve.set_defaults(func=_serve)

    token = commands.add_parser("token", help="print a room token (JWT HS256)")
    token.add_argument(
        "--secret",
        default=os.environ.get("PERFORMER_AUTH_SECRET"),
        required="PERFORMER_AUTH_SECRET" not in os.environ,
    )
    token.add_argument("--room", required=True, help="room name, or a prefix ending in *")
    token.add_argument("--read-only", action="store_true")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    token.add_argument("--user", default=None)
    token.set_defaults(func=_token)

    check = commands.add_parser("verify", help="replay every room; non-zero on mismatch")
    _store_options(check)
    check.set_defaults(func=_verify)

    compact = commands.add_parser("compact", help="write snapshots now")
    _store_options(compact)
    compact.add_argument("--room", default=None)
    compact.set_defaults(func=_compact)

    export = commands.add_parser("export", help="write one room to a file")
    _store_options(export)
    export.add_argument("--room", required=True)
    export.add_argument("-o", "--output", type=Path, required=True)
    export.set_defaults(func=_export)

    load = commands.add_parser("import", help="append an exported room to a store")
    _store_options(load)
    load.add_argument("--room", default=None, help="import under another name")
    load.add_argument("input", type=Path)
    load.set_defaults(func=_import)

    migrate = commands.add_parser("migrate", help="copy LMDB rooms into Redis (idempotent)")
    migrate.add_argument("--data", type=Path, required=True)
    migrate.add_argument("--redis", required=True)
    migrate.set_defaults(func=_migrate)

    chat = commands.add_parser("chat", help="terminal chat on the Python client")
    chat.add_argument("--url", default="ws://127.0.0.1:8080/rooms")
    chat.add_argument("--room", default="lobby")
    chat.add_argument("--user", default=os.environ.get("USER", "guest"))
    chat.add_argument("--token", default=None)
    chat.add_argument("--store", default="./client-data")
    chat.set_defaults(func=_chat)

    bench = commands.add_parser("bench", help="run the benchmark suite", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_bench)
    return parser


# ---------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    limits = Limits(
        max_frame_bytes=args.max_frame_bytes,
        max_update_bytes=args.max_update_bytes,
        max_doc_bytes=args.max_doc_bytes,
        messages_per_second=args.rate,
        message_burst=max(1, int(args.rate * 2)),
        send_buffer_bytes=args.send_buffer_bytes,
    )
    config = Config(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        auth_secret=args.auth_secret or None,
        idle_unload_seconds=args.idle_unload,
        limits=limits,
        redis_url=args.redis,
        retention=Retention(keep_log=not args.trim_log),
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run_server(config))
    return int(uvloop.run(_run_server(config)))


async def _run_server(config: Config) -> int:
    app = create_app(config)
    runner = web.AppRunner(
        app, shutdown_timeout=config.shutdown_timeout_seconds, handle_signals=False, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"LISTENING http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining rooms")
    await runner.cleanup()
    log.info("stopped")
    return 0


# ---------------------------------------------------------------------- tools


def _open_store(data: Path) -> DocStore:
    if not data.exists():
        raise SystemExit(f"error: no data directory at {data}")
    return DocStore(LmdbKV(data))


def _token(args: argparse.Namespace) -> int:
    print(
        issue_token(args.secret, args.room, read_only=args.read_only, ttl=args.ttl, user=args.user)
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    if args.redis:
        from server.redis_tools import verify_redis

        report = asyncio.run(verify_redis(args.redis))
    else:
        report = verify(_open_store(args.data))
    for problem in report.problems:
        print(f"MISMATCH {problem}")
    print(
        f"verified {report.rooms} rooms, {report.records} records: "
        f"{'ok' if report.ok else f'{len(report.problems)} problems'}"
    )
    return 0 if report.ok else 1


def _compact(args: argparse.Namespace) -> int:
    if args.redis:
        from server.redis_tools import compact_redis

        for name, written in asyncio.run(compact_redis(args.redis, args.room)):
            print(f"{name}: {'snapshot written' if written else 'already compact or busy'}")
        return 0
    store = _open_store(args.data)
    names = [args.room] if args.room else [m.name for m in store.rooms()]
    for name in names:
        snapshot = store.compact(name, force=True)
        print(
            f"{name}: "
            + (
                f"snapshot at seq {snapshot.seq}, {len(snapshot.update)} bytes"
                if snapshot
                else "already compact"
            )
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.redis:
        from server.redis_tools import export_redis

        data = asyncio.run(export_redis(args.redis, args.room))
    else:
        data = export_room(_open_store(args.data), args.room)
    args.output.write_bytes(data)
    print(f"exported {args.room} ({len(data)} bytes) to {args.output}")
    return 0


def _import(args: argparse.Namespace) -> int:
    if args.redis:
        from server.redis_tools import import_redis

        name, count = asyncio.run(import_redis(args.redis, args.input.read_bytes(), args.room))
        print(f"imported {count} updates into room {name}")
        return 0
    args.data.mkdir(parents=True, exist_ok=True)
    name, count = import_room(DocStore(LmdbKV(args.data)), args.input.read_bytes(), args.room)
    print(f"imported {count} updates into room {name}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from server.migrate import migrate

    for room, copied in asyncio.run(migrate(_open_store(args.data), args.redis)):
        print(f"{room}: copied {copied} updates")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from engine.chat import run_chat  # type: ignore[import-not-found,unused-ignore]

    return int(asyncio.run(run_chat(args.url, args.room, args.user, args.token, args.store)))


def _bench(args: argparse.Namespace) -> int:
    from benchmarks.__main__ import main as bench_main  # type: ignore[import-not-found,unused-ignore]

    return int(bench_main(args.rest))

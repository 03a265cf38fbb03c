"""The command line: one small function per command's flags."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.errors import RoomNameError
from engine.names import validate_room_name
from engine.storage import RoomWindow
from engine.storage.retention import DAY
from server.cli import ops, serve, tools
from server.config import Config

DEFAULTS = Config()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="performer", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _serve(commands.add_parser("serve", help="run the sync server"))
    _token(commands.add_parser("token", help="print a room token (JWT HS256)"))
    _store_command(commands, "verify", "replay every room; non-zero on mismatch", tools.verify)
    compact = _store_command(commands, "compact", "write snapshots now", tools.compact)
    compact.add_argument("--room", default=None)
    export = _store_command(commands, "export", "write one room to a file", tools.export)
    export.add_argument("--room", required=True)
    export.add_argument("-o", "--output", type=Path, required=True)
    load = _store_command(
        commands, "import", "add an exported room, or every room of a backup, to a store",
        tools.load,
    )  # fmt: skip
    load.add_argument("--room", default=None, help="import an exported room under another name")
    load.add_argument("input", type=Path, help="an export file, or a backup directory")
    hooks = _store_command(commands, "webhooks", "list parked webhook deliveries", tools.webhooks)
    hooks.add_argument("--retry", metavar="ROOM", default=None,
                       help="unpark ROOM ('*': all); delivery resumes from its cursor")  # fmt: skip
    ops.add_backup(commands)
    ops.add_recover(commands)
    migrate = commands.add_parser("migrate", help="copy LMDB rooms into Redis (idempotent)")
    migrate.add_argument("--data", type=Path, required=True)
    migrate.add_argument("--redis", required=True)
    migrate.set_defaults(func=tools.migrate_rooms)
    _chat(commands.add_parser("chat", help="terminal chat on the Python client"))
    bench = commands.add_parser("bench", help="run the benchmark suite", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=tools.bench)
    return parser


def _store_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    func: object,
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text)
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", type=Path, help="an LMDB data directory")
    where.add_argument("--redis", help="redis://HOST:PORT/DB: rooms shared through Redis")
    command.set_defaults(func=func)
    return command


def _serve(serve_cmd: argparse.ArgumentParser) -> None:
    add = serve_cmd.add_argument
    limits = DEFAULTS.limits
    add("--host", default=DEFAULTS.host)
    add("--port", type=int, default=DEFAULTS.port, help="0 picks a free port")
    add("--data", type=Path, default=DEFAULTS.data_dir)
    add("--auth-secret", default=os.environ.get("PERFORMER_AUTH_SECRET"))
    add("--allowed-origins", default="", metavar="ORIGINS",
        help="comma-separated browser origins that may connect and write, e.g. "
             "https://app.example ('*': any; default: this server's own host)")  # fmt: skip
    add("--idle-unload", type=float, default=DEFAULTS.idle_unload_seconds,
        help="seconds a room without clients stays in memory")  # fmt: skip
    add("--max-frame-bytes", type=int, default=limits.max_frame_bytes)
    add("--max-update-bytes", type=int, default=limits.max_update_bytes)
    add("--max-doc-bytes", type=int, default=limits.max_doc_bytes)
    add("--max-state-vector-entries", type=int, default=limits.max_state_vector_entries,
        help="client ids a state vector may name beyond those the room knows")  # fmt: skip
    add("--rate", type=float, default=limits.messages_per_second,
        help="messages per second per connection before reading slows down")  # fmt: skip
    add("--send-buffer-bytes", type=int, default=limits.send_buffer_bytes,
        help="disconnect a client that stops reading once this much is queued")  # fmt: skip
    add("--page-bytes", type=int, default=limits.page_bytes,
        help="a change-feed or history page ends after about this many bytes")  # fmt: skip
    add("--streams-per-caller", type=int, default=limits.streams_per_caller,
        help="open change-feed streams one user or token may hold")  # fmt: skip
    add("--page-reads-per-caller", type=int, default=limits.page_reads_per_caller,
        help="change-feed and history pages one user or token may read at once")  # fmt: skip
    add("--page-bytes-per-second", type=non_negative_int, default=limits.page_bytes_per_second,
        metavar="N", help="bytes of change-feed and history pages one user or token may take "
                          "per second, per process (0: no limit)")  # fmt: skip
    add("--pages-per-second", type=non_negative_int, default=limits.pages_per_second,
        metavar="N", help="change-feed and history pages one user or token may take per "
                          "second however small, per process (0: no such limit)")  # fmt: skip
    add("--restore-bytes-per-second", type=non_negative_int,
        default=limits.restore_bytes_per_second, metavar="N",
        help="bytes restores may write to one room per second, per process "
             "(0: no limit)")  # fmt: skip
    compute = DEFAULTS.compute
    add("--compute-workers", type=int, default=compute.workers,
        help="worker processes for JSON views and restores")  # fmt: skip
    add("--compute-queue", type=int, default=compute.queue,
        help="views and restores that may wait for a worker before 503 + Retry-After")  # fmt: skip
    add("--compute-seconds", type=float, default=compute.budget_seconds,
        help="a view or restore running longer is stopped (its worker replaced)")  # fmt: skip
    add("--redis", default=os.environ.get("PERFORMER_REDIS"),
        help="redis://HOST:PORT/DB: share rooms with other processes")  # fmt: skip
    add("--trim-log", action="store_true",
        help="drop log entries once a snapshot covers them (no time travel before it)")  # fmt: skip
    add("--hooks", default=None, metavar="MODULE:NAME",
        help="application hooks: a Hooks instance, or a class built with no arguments")  # fmt: skip
    add("--rules", default=None, metavar="FILE", type=Path,
        help="rules on parts of rooms (TOML, see examples/chat-rules.toml)")  # fmt: skip
    add("--webhook", default=None, metavar="URL", help="POST each room's changes here")
    add("--webhook-secret", default=os.environ.get("PERFORMER_WEBHOOK_SECRET"),
        help="HMAC-SHA256 key for the X-Performer-Signature header")  # fmt: skip
    add("--webhook-timeout", type=float, default=DEFAULTS.webhook_timeout_seconds,
        help="seconds before an unanswered webhook request counts as failed")  # fmt: skip
    add("--webhook-retry", type=float, default=DEFAULTS.webhook_retry_seconds,
        help="first retry delay in seconds; the later ones (up to hours, about a day in "
             "all) keep their proportions to it")  # fmt: skip
    add("--webhook-probe", type=float, default=DEFAULTS.webhook_probe_seconds,
        help="seconds between tries of a parked room; one that succeeds resumes all")  # fmt: skip
    add("--webhook-unsigned", action="store_true",
        help="send webhooks without a signature (no secret)")  # fmt: skip
    add("--history-days", type=positive_float, default=None, metavar="N",
        help="keep the full log for N days; older entries are folded into a snapshot")  # fmt: skip
    add("--history-bytes", type=positive_int, default=None, metavar="N",
        help="keep the newest N bytes of each room's log; older entries are folded")  # fmt: skip
    add("--history-room", type=room_window, action="append", default=[],
        metavar="PATTERN:WINDOW",
        help="a window for the rooms PATTERN names (a name, or a prefix ending in *): "
             "days=N, bytes=N, both (days=30,bytes=10000000), or all (keep everything); "
             "repeat for more patterns; the most specific one wins")  # fmt: skip
    add("--history-fold-every", type=duration, default=DEFAULTS.history_fold_seconds,
        metavar="SECONDS", help="how often to look for history past the window")  # fmt: skip
    add("--archive", type=Path, default=None, metavar="DIR",
        help="ship each room's committed log and snapshots here (performer recover)")  # fmt: skip
    add("--backup-dir", type=Path, default=None,
        help="write scheduled backups here (each a data directory usable as --data)")  # fmt: skip
    add("--backup-every", type=duration, default=DEFAULTS.backup_every_seconds,
        metavar="SECONDS", help="seconds between scheduled backups (or 30m, 1h, 1d)")  # fmt: skip
    add("--backup-keep", type=positive_int, default=DEFAULTS.backup_keep, metavar="N",
        help="how many scheduled backups to keep")  # fmt: skip
    add("--console-open", action="store_true",
        help="without auth, serve /console to any address (default: localhost only)")  # fmt: skip
    serve_cmd.set_defaults(func=serve.serve)


UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(raw: str) -> float:
    """Seconds, or a number with s, m, h or d."""
    unit = UNITS.get(raw[-1:].lower(), None) if raw else None
    try:
        value = float(raw[:-1]) * unit if unit else float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a duration (e.g. 3600, 30m, 1h)")
    return value


def positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number > 0")
    return value


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number >= 1")
    return value


def non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number >= 0 (0: no limit)")
    return value


def room_window(raw: str) -> RoomWindow:
    """PATTERN:WINDOW, as `--history-room` takes it (see its help)."""
    pattern, _, spec = raw.rpartition(":")
    if not pattern or not spec:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected PATTERN:WINDOW, e.g. 'notes-*:days=7'")
    prefix = pattern.removesuffix("*")
    try:
        if prefix:
            validate_room_name(prefix)
    except RoomNameError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from None
    if spec == "all":
        return RoomWindow(pattern)
    bounds: dict[str, str] = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if name not in ("days", "bytes") or name in bounds:
            raise argparse.ArgumentTypeError(
                f"{raw!r}: the window is days=N, bytes=N, both (comma-separated) or all"
            )
        bounds[name] = value
    days = positive_float(bounds["days"]) if "days" in bounds else None
    size = positive_int(bounds["bytes"]) if "bytes" in bounds else None
    return RoomWindow(pattern, None if days is None else days * DAY, size)


def _token(token: argparse.ArgumentParser) -> None:
    token.add_argument(
        "--secret",
        default=os.environ.get("PERFORMER_AUTH_SECRET"),
        required="PERFORMER_AUTH_SECRET" not in os.environ,
    )
    token.add_argument("--room", required=True, help="room name, or a prefix ending in *")
    token.add_argument("--read-only", action="store_true")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    token.add_argument("--user", default=None)
    token.add_argument(
        "--admin", action="store_true", help='claim "role": "admin": opens /console (--room "*")'
    )
    token.set_defaults(func=tools.token)


def _chat(chat: argparse.ArgumentParser) -> None:
    chat.add_argument("--url", default=f"ws://{DEFAULTS.host}:{DEFAULTS.port}/rooms")
    chat.add_argument("--room", default="lobby")
    chat.add_argument("--user", default=os.environ.get("USER", "guest"))
    chat.add_argument("--token", default=None)
    chat.add_argument("--store", default="./client-data")
    chat.set_defaults(func=tools.chat)

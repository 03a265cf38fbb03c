"""`performer serve`: build the Config from the flags, run until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from engine.errors import RulesInvalid
from engine.rules.model import load_rules
from engine.storage import Retention
from engine.storage.retention import DAY
from server.app import ConfigError, create_app
from server.config import ComputeLimits, Config, Limits
from server.hooks import HooksNotFound, load_hooks
from server.rooms.memory import return_big_buffers

log = logging.getLogger("performer")


def config_from(args: argparse.Namespace) -> Config:
    limits = Limits(
        max_frame_bytes=args.max_frame_bytes,
        max_update_bytes=args.max_update_bytes,
        max_doc_bytes=args.max_doc_bytes,
        max_state_vector_entries=args.max_state_vector_entries,
        messages_per_second=args.rate,
        message_burst=max(1, int(args.rate * 2)),
        send_buffer_bytes=args.send_buffer_bytes,
        page_bytes=args.page_bytes,
        streams_per_caller=args.streams_per_caller,
        page_reads_per_caller=args.page_reads_per_caller,
        page_bytes_per_second=args.page_bytes_per_second,
        pages_per_second=args.pages_per_second,
        restore_bytes_per_second=args.restore_bytes_per_second,
    )
    compute = ComputeLimits(
        workers=args.compute_workers,
        queue=args.compute_queue,
        budget_seconds=args.compute_seconds,
    )
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        auth_secret=args.auth_secret or None,
        allowed_origins=tuple(o for o in args.allowed_origins.split(",") if o.strip()),
        idle_unload_seconds=args.idle_unload,
        limits=limits,
        compute=compute,
        redis_url=args.redis,
        retention=Retention(
            keep_log=not args.trim_log,
            history_seconds=None if args.history_days is None else args.history_days * DAY,
            history_bytes=args.history_bytes,
            rooms=tuple(args.history_room),
        ),
        history_fold_seconds=args.history_fold_every,
        webhook_url=args.webhook,
        webhook_secret=args.webhook_secret or None,
        webhook_unsigned=args.webhook_unsigned,
        webhook_timeout_seconds=args.webhook_timeout,
        webhook_retry_seconds=args.webhook_retry,
        webhook_probe_seconds=args.webhook_probe,
        archive_dir=args.archive,
        backup_dir=args.backup_dir,
        backup_every_seconds=args.backup_every,
        backup_keep=args.backup_keep,
        console_open=args.console_open,
    )


def serve(args: argparse.Namespace) -> int:
    """Exit 2 with one line for a configuration that cannot run (no traceback wall)."""
    config = config_from(args)
    return_big_buffers()  # the process is ours: big freed buffers go back to the system
    try:
        hooks = load_hooks(args.hooks) if args.hooks else None
        rules = load_rules(args.rules) if args.rules else None
        app = create_app(config, hooks, rules=rules)
    except (HooksNotFound, ConfigError, RulesInvalid) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_server(config, app))
    return int(uvloop.run(run_server(config, app)))


async def run_server(config: Config, app: web.Application | None = None) -> int:
    app = app or create_app(config)
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

"""`performer serve`: build the Config from the flags, run until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from engine.storage import Retention
from server.app import create_app
from server.config import Config, Limits

log = logging.getLogger("performer")


def config_from(args: argparse.Namespace) -> Config:
    limits = Limits(
        max_frame_bytes=args.max_frame_bytes,
        max_update_bytes=args.max_update_bytes,
        max_doc_bytes=args.max_doc_bytes,
        messages_per_second=args.rate,
        message_burst=max(1, int(args.rate * 2)),
        send_buffer_bytes=args.send_buffer_bytes,
    )
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        auth_secret=args.auth_secret or None,
        idle_unload_seconds=args.idle_unload,
        limits=limits,
        redis_url=args.redis,
        retention=Retention(keep_log=not args.trim_log),
    )


def serve(args: argparse.Namespace) -> int:
    config = config_from(args)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_server(config))
    return int(uvloop.run(run_server(config)))


async def run_server(config: Config) -> int:
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

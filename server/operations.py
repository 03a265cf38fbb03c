"""The operations a server runs beside its rooms: scheduled backups (and, when
configured, the continuous archive), started after the store and stopped before it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.backups import ScheduledBackups
from server.http.keys import CONFIG, METRICS, STORE


async def operations(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    backups = None
    if config.backup_dir is not None:
        backups = ScheduledBackups(config, app[STORE], app[METRICS])
        await backups.start()
    try:
        yield
    finally:
        if backups is not None:
            await backups.close()

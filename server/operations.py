"""The operations a server runs beside its rooms: scheduled backups and history
retention (and, when configured, the continuous archive), started after the store and
stopped before it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.backups import ScheduledBackups
from server.http.keys import CONFIG, METRICS, REGISTRY, STORE
from server.retention import HistoryFolder, Windows


async def operations(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    running: list[ScheduledBackups | HistoryFolder] = []
    if config.backup_dir is not None:
        fanout = app[REGISTRY].fanout
        running.append(ScheduledBackups(config, app[STORE], app[METRICS], fanout))
    windows = Windows.of(config)
    if windows is not None:
        fanout = app[REGISTRY].fanout
        running.append(HistoryFolder(windows, app[STORE], fanout, app[METRICS],
                                     config.history_fold_seconds))  # fmt: skip
    for part in running:
        await part.start()
    try:
        yield
    finally:
        for part in running:
            await part.close()

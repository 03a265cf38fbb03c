"""A rules server inside the test process (LMDB), for the tests the mutation run uses:
it sees which rule code a test reaches only when that code runs in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer

from engine.rules.model import Rules
from server import Config, create_app
from server.hooks import Hooks


@dataclass(frozen=True)
class Served:
    url: str


@asynccontextmanager
async def in_process(
    data_dir: Path, secret: str, *, hooks: Hooks | None = None, rules: Rules | None = None
) -> AsyncIterator[Served]:
    app = create_app(Config(data_dir=data_dir, auth_secret=secret), hooks, rules=rules)
    async with TestServer(app) as server:
        yield Served(str(server.make_url("")).rstrip("/"))

"""Waiting on documents and reading the server's copy, each under a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from pycrdt import Array, Doc

DEADLINE = 15.0


async def wait_for_doc(doc: Doc[Any], done: Callable[[], bool]) -> None:
    """Wait until `done()` holds, re-checking after every change to `doc`."""
    changed = asyncio.Event()
    subscription = doc.observe(lambda _event: changed.set())
    try:
        async with asyncio.timeout(DEADLINE):
            while True:
                changed.clear()
                if done():
                    return
                await changed.wait()
    finally:
        doc.unobserve(subscription)


def items(doc: Doc[Any], name: str = "items") -> list[Any]:
    return list(doc.get(name, type=Array).to_py() or [])


async def server_doc(http_url: str, room: str, token: str | None = None) -> Doc[Any]:
    """The room as the server holds it (`GET /v1/rooms/{room}/state`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{http_url}/v1/rooms/{room}/state"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(DEADLINE)) as http:
        async with http.get(url, headers=headers) as resp:
            resp.raise_for_status()
            state = await resp.read()
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return doc

"""One SDK client in its own process, so tests can make it exit and start a new one.

python -m tests.client.client_process edit URL ROOM STORE TEXT...  append offline, exit
python -m tests.client.client_process save URL ROOM STORE          sync, wait for saved
"""

from __future__ import annotations

import asyncio
import sys

from pycrdt import Array

from engine.client import Backoff, connect

FAST = Backoff(initial=0.05, maximum=0.5)


async def edit(url: str, room: str, store: str, texts: list[str]) -> int:
    async with connect(url, room, store_path=store, backoff=FAST) as client:
        client.doc.get("items", type=Array).extend(texts)
        print(client.status, flush=True)
    return 0


async def save(url: str, room: str, store: str) -> int:
    async with connect(url, room, store_path=store, backoff=FAST) as client:
        async with asyncio.timeout(20):
            await client.synced()
            await client.saved()
        print(client.status, flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode, url, room, store, *texts = argv
    if mode == "edit":
        return asyncio.run(edit(url, room, store, texts))
    if mode == "save":
        return asyncio.run(save(url, room, store))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

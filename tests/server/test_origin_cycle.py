"""An update whose structs name each other as origins (a cycle only a crafted update
holds), sent to a room whose `Hooks.check` describes every edit: telling the types of
the roots it writes to ends, and the room carries on for everyone else. The walk that
told root types used to follow such a cycle for ever, on the event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from engine.protocol import Update
from engine.rules.model import load_rules
from harness.wire import connect
from server import Config
from server.auth import issue_token
from server.hooks import Edit, Verdict
from tests.rules.in_process import served

SECRET = "cycle-secret-" + "0123456789abcdef" * 4
ROOM = "chat"
RULES = str(Path(__file__).resolve().parents[2] / "examples" / "chat-rules.toml")
# Client 1 writes two strings, each after the other: (1, 0) after (1, 1) and back.
CYCLE = bytes([1, 2, 1, 0, 0x84, 1, 1, 1, ord("a"), 0x84, 1, 0, 1, ord("b"), 0])


def _post(doc: Doc[Any], user: str, text: str) -> bytes:
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
    doc.get("messages", type=Array).append(Map({"user": user, "text": text}))
    doc.unobserve(subscription)
    return updates[0]


def _token(user: str) -> str:
    return issue_token(SECRET, ROOM, user=user)


@pytest.fixture(params=["lmdb", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    if request.param == "lmdb":
        return Config(data_dir=tmp_path, auth_secret=SECRET)
    redis = request.getfixturevalue("redis_server")
    return Config(data_dir=tmp_path, auth_secret=SECRET, redis_url=redis.url)


@pytest.mark.timeout(60)
async def test_an_origin_cycle_leaves_a_checked_room_working(config: Config) -> None:
    def allow(edit: Edit) -> Verdict:
        return Verdict()

    async with served(config, load_rules(RULES), allow) as (url, _rooms):
        async with connect(url, ROOM, token=_token("mallory")) as mallory:
            await mallory.sync()
            await mallory.send(Update(CYCLE))
            async with connect(url, ROOM, token=_token("ann"), ack=True) as ann:
                await ann.sync()
                await ann.send(Update(_post(ann.doc, "ann", "hello")))
                await ann.wait_saved(1, timeout=15)
        async with connect(url, ROOM, token=_token("bo")) as bo:
            await bo.sync()
            assert bo.doc.get("messages", type=Array).to_py() == [{"user": "ann", "text": "hello"}]

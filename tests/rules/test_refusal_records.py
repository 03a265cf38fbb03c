"""The history's record of a refusal is written with the entry it describes: a store that
fails every write after the commit (as if the process died right there) still shows, in
`/history`, who tried what and which rule undid it, on LMDB and on Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Map

from engine.errors import StorageError
from engine.protocol import PermissionDeniedMessage, Update
from engine.rules.model import parse_rules
from engine.storage import Append, DocStore, KVLogStore, MemoryKV
from engine.storage.archive import decode_segment, encode_segment
from harness.wire import connect
from server import Config
from server.auth import issue_token
from tests.rules.in_process import served

SECRET = "refusal-records-secret-" + "0123456789abcdef" * 4
ROOM = "team"
RULES = parse_rules('[[rule]]\npath = "messages"\nentries = "author"\nauthor_field = "user"\n')


def token(user: str) -> str:
    return issue_token(SECRET, ROOM, user=user)


@pytest.fixture
def writes_after_the_commit_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusal records or counts written beside the log fail, as after a crash."""
    set_meta, add_to_meta = DocStore.set_meta, DocStore.add_to_meta

    def failing_set(self: DocStore, room: str, name: str, value: Any, **kwargs: Any) -> bool:
        if name.startswith("refused"):
            raise StorageError("the process died after the commit")
        return set_meta(self, room, name, value, **kwargs)

    def failing_add(self: DocStore, room: str, name: str, amount: int) -> int:
        if name == "refusals":
            raise StorageError("the process died after the commit")
        return add_to_meta(self, room, name, amount)

    monkeypatch.setattr(DocStore, "set_meta", failing_set)
    monkeypatch.setattr(DocStore, "add_to_meta", failing_add)


@pytest.mark.usefixtures("writes_after_the_commit_fail")
async def test_the_refusal_is_recorded_in_the_entry_it_undid(
    store_config: dict[str, Any],
) -> None:
    config = Config(auth_secret=SECRET, **store_config)
    async with served(config, RULES) as (url, _rooms):
        async with connect(url, ROOM, token=token("ann"), ack=True) as ann:
            await ann.sync()
            before = ann.doc.get_state()
            ann.doc.get("messages", type=Array).append(Map({"user": "ann", "text": "hi"}))
            await ann.send(Update(ann.doc.get_update(before)))
            await ann.wait_saved(1)
        async with connect(url, ROOM, token=token("bob")) as bob:
            await bob.sync()
            before = bob.doc.get_state()
            del bob.doc.get("messages", type=Array)[0]
            await bob.send(Update(bob.doc.get_update(before)))
            async with asyncio.timeout(10):
                denied = await bob.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
        headers = {"Authorization": f"Bearer {token('ann')}"}
        async with aiohttp.ClientSession() as http:
            response = await http.get(f"{url}/v1/rooms/{ROOM}/history", headers=headers)
            entries = (await response.json())["entries"]
    assert [entry.get("rejected") for entry in entries] == [
        None,
        {"user": "bob", "by": "rule", "reason": "rule: only the author can delete messages[0]"},
    ]


def test_a_refusal_record_travels_with_its_entry() -> None:
    """Appended with its update, read back by the history's header reader, and carried
    by an archive segment (what `performer recover` rebuilds from)."""
    rejected = {"user": "bob", "by": "rule", "reason": "rule: only the author can delete x"}
    docs = DocStore(KVLogStore(MemoryKV()), clock=lambda: 5.0)
    docs.append_many(
        [Append("r", b"\x00\x00", "ann"), Append("r", b"\x00\x00", "bob", (), None, rejected)]
    )
    assert [entry.rejected for entry in docs.history("r")] == [None, rejected]
    records = docs.records("r")
    assert records[1].rejected == rejected
    assert decode_segment(encode_segment(records)) == records

"""The rig of the attacker property test: a room's real actor (rules, `Hooks.check`,
client-id guard, group commit on an in-memory KV) with users on hand-delivered wires,
some of them pycrdt replicas and some stock Yjs replicas in Node (`js/users.mjs`), plus
hand-crafted updates sent on wires of their own."""

from __future__ import annotations

import base64
import json
import selectors
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map

from engine.document import rebuild
from engine.protocol import Message, PermissionDeniedMessage, SyncStep2, Update, decode
from engine.rules.model import Rules
from engine.storage import DocStore, KVLogStore, MemoryKV
from server.config import Config
from server.hooks import Hooks
from server.metrics import Metrics
from server.rooms.actor import RoomActor
from server.rooms.fanout import LocalFanout
from server.rooms.registry import RoomRegistry
from server.rooms.store import RoomStore
from tests.reliability.actor_rig import Wire, settle

SCRIPT = Path(__file__).parent / "js" / "users.mjs"
REPLY_SECONDS = 30.0


class NodeUsers:
    """One Node process holding the Yjs docs of every Node user."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **params}) + "\n")
        self.process.stdin.flush()
        if not self.selector.select(REPLY_SECONDS):
            raise AssertionError(f"the Node replicas did not answer {op} in time")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("the Node replicas exited")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise AssertionError(f"node {op} failed: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self.call("quit")
            self.process.wait(REPLY_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.selector.close()
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    pipe.close()


def message(author: str, text: str) -> Map[Any]:
    return Map({"user": author, "text": text, "reactions": Map()})


class PyUser:
    """A pycrdt replica making the same edits as `users.mjs`."""

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()

    @property
    def client_id(self) -> int:
        return int(self.doc.client_id)

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)

    def edit(self, op: str, **params: Any) -> list[bytes]:
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(bytes(event.update)))
        messages = self.doc.get("messages", type=Array)
        with self.doc.transaction():
            if op == "post":
                messages.append(message(params["author"], params["text"]))
            elif op == "delete":
                del messages[params["at"]]
            elif op == "text":
                messages[params["at"]]["text"] = params["text"]
            elif op == "react":
                reactions = messages[params["at"]]["reactions"]
                if params["on"]:
                    reactions[params["key"]] = True
                elif params["key"] in reactions:
                    del reactions[params["key"]]
            elif params["value"] is None:
                self.doc.get("profiles", type=Map).pop(params["key"], None)
            else:
                self.doc.get("profiles", type=Map)[params["key"]] = params["value"]
        self.doc.unobserve(subscription)
        return updates

    def state(self) -> dict[str, Any]:
        return view(self.doc)


class NodeUser:
    """A stock Yjs replica in the shared Node process."""

    def __init__(self, node: NodeUsers, name: str) -> None:
        self.node = node
        self.name = name

    @property
    def client_id(self) -> int:
        return int(self.node.call("client_id", user=self.name)["client_id"])

    def apply(self, update: bytes) -> None:
        self.node.call("apply", user=self.name, update=base64.b64encode(update).decode())

    def edit(self, op: str, **params: Any) -> list[bytes]:
        reply = self.node.call(op, user=self.name, **params)
        return [base64.b64decode(update) for update in reply["updates"]]

    def state(self) -> dict[str, Any]:
        return self.node.call("state", user=self.name)


def view(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "messages": doc.get("messages", type=Array).to_py() or [],
        "profiles": doc.get("profiles", type=Map).to_py() or {},
    }


class AttackRoom:
    """One room on a real actor, with its users' replicas on wires."""

    def __init__(self, actor: RoomActor, users: dict[str, PyUser | NodeUser]) -> None:
        self.actor = actor
        self.users = users
        self.wires: dict[str, Wire] = {}
        self.denied: list[str] = []
        self.history: list[bytes] = [self.server_update()]
        self._peer_ids = 0
        for user in users:
            self.wires[user] = self._join(user)

    def _join(self, user: str) -> Wire:
        self._peer_ids += 1
        wire = Wire(self._peer_ids, user=user)
        self.actor.join(wire)
        return wire

    @property
    def server_doc(self) -> Doc[Any]:
        return self.actor.doc.doc

    def server_update(self) -> bytes:
        return bytes(self.server_doc.get_update())

    async def edit(self, user: str, op: str, **params: Any) -> None:
        """A user's edit on its replica, sent on its wire."""
        for update in self.users[user].edit(op, **params):
            await self.send(self.wires[user], Update(update))

    async def attack(self, user: str, message: Message) -> str | None:
        """A hand-crafted message on a wire of its own; the close reason, if closed."""
        wire = self._join(user)
        await self.send(wire, message)
        self.actor.leave(wire)
        return wire.close_reason

    async def send(self, wire: Wire, message: Message) -> None:
        self.actor.submit(wire, message)
        await settle(self.actor)
        self.deliver()
        self.history.append(self.server_update())

    def deliver(self) -> None:
        for user, wire in self.wires.items():
            while wire.inbox:
                received = decode(wire.inbox.popleft())
                if isinstance(received, (Update, SyncStep2)):
                    self.users[user].apply(received.update)
                elif isinstance(received, PermissionDeniedMessage):
                    self.denied.append(received.reason)
            if wire.closed:  # a user's own edits are never closed on here
                raise AssertionError(f"{user} was closed: {wire.close_reason}")

    async def replay(self, user: str, which: int) -> None:
        """A reconnecting client's step 2: an old state of the room, sent again."""
        await self.send(self.wires[user], SyncStep2(self.history[which % len(self.history)]))


@asynccontextmanager
async def attack_room(
    rules: Rules, hooks: Hooks, users: dict[str, PyUser | NodeUser]
) -> AsyncIterator[AttackRoom]:
    store = DocStore(KVLogStore(MemoryKV()), rebuild=rebuild)
    metrics = Metrics()
    room_store = RoomStore(store, metrics)
    await room_store.start()
    config = Config(idle_unload_seconds=60, rules=rules, check_budget_seconds=10.0)
    registry = RoomRegistry(room_store, LocalFanout(), config, metrics, hooks)
    try:
        yield AttackRoom(await registry.acquire("room"), users)
    finally:
        await registry.close(1.0)
        await room_store.close()


def delete_set_update(ranges: list[tuple[int, int, int]]) -> bytes:
    """A v1 update with no structs and a delete set of (client, clock, length) ranges."""
    by_client: dict[int, list[tuple[int, int]]] = {}
    for client, clock, length in ranges:
        by_client.setdefault(client, []).append((clock, length))
    out = bytearray(_varuint(0))
    out += _varuint(len(by_client))
    for client, found in by_client.items():
        out += _varuint(client) + _varuint(len(found))
        for clock, length in found:
            out += _varuint(clock) + _varuint(length)
    return bytes(out)


def _varuint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)

"""`performer chat` as a user runs it: a real process reading stdin, against a real server."""

from __future__ import annotations

import asyncio
from asyncio.subprocess import Process
from pathlib import Path

from pycrdt import Array

from engine.client import connect
from engine.client.chat import color_for, format_message, new_message, reaction_counts
from tests.client.conftest import PERFORMER, ROOT, LiveServer
from tests.client.helpers import DEADLINE, server_doc, wait_for_doc


class Chat:
    """A running `performer chat` process and everything it printed so far."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.transcript: list[str] = []

    @classmethod
    async def start(cls, server: LiveServer, room: str, user: str, store: Path) -> Chat:
        args = ["chat", "--url", server.ws_url, "--room", room, "--user", user]
        process = await asyncio.create_subprocess_exec(
            PERFORMER,
            *args,
            "--store",
            str(store),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def expect(self, text: str) -> None:
        """Wait until some printed line contains `text` (in any order with the others)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(DEADLINE):
            while not any(text in line for line in self.transcript):
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"chat ended before printing {text!r}: {self.transcript}")
                self.transcript.append(raw.decode().rstrip("\n"))

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def quit(self) -> str:
        """`/quit`; the rest of what it printed (it must exit 0)."""
        await self.type("/quit")
        out, err = await asyncio.wait_for(self.process.communicate(), timeout=DEADLINE)
        assert self.process.returncode == 0, err.decode()
        return out.decode()


def texts(messages: Array[object]) -> list[str]:
    return [m["text"] for m in messages.to_py() or []]  # type: ignore[index]


async def test_chat_talks_with_an_sdk_client(live_server: LiveServer, tmp_path: Path) -> None:
    async with connect(live_server.ws_url, "talk", store_path=tmp_path / "bob") as bob:
        bob.awareness.set_local_state({"user": {"name": "bob", "color": "#00f"}, "typing": True})
        messages = bob.doc.get("messages", type=Array)
        messages.append(new_message("bob", "before you came"))
        await asyncio.wait_for(bob.saved(), DEADLINE)

        chat = await Chat.start(live_server, "talk", "ann", tmp_path / "ann")
        await chat.expect("bob: before you came")
        await chat.expect("* bob is here")
        await chat.expect("* bob is typing")
        await chat.type("hello from the terminal")
        await wait_for_doc(bob.doc, lambda: "hello from the terminal" in texts(messages))
        messages.append(new_message("bob", "hi ann"))
        await chat.expect("bob: hi ann")
        await chat.type("/react 3 👍")
        await wait_for_doc(bob.doc, lambda: len(messages[2]["reactions"]) == 1)
        await chat.quit()

    assert dict(messages[2]["reactions"]) == {"👍\tann": True}
    assert [m["user"] for m in messages.to_py() or []] == ["bob", "ann", "bob"]


async def test_chat_works_offline_and_catches_up(live_server: LiveServer, tmp_path: Path) -> None:
    live_server.stop()
    chat = await Chat.start(live_server, "later", "ann", tmp_path / "ann")
    await chat.type("written offline")
    await chat.expect("ann: written offline")
    assert "not on the server yet" in await chat.quit()

    live_server.start()
    chat = await Chat.start(live_server, "later", "ann", tmp_path / "ann")
    await chat.expect("-- saved")
    await chat.quit()

    doc = await server_doc(live_server.http_url, "later")
    assert texts(doc.get("messages", type=Array)) == ["written offline"]


def test_message_lines_show_reactions_counted_per_emoji() -> None:
    message = {
        "id": "m1",
        "user": "ann",
        "text": "hi",
        "ts": 0.0,
        "reactions": {"👍\tbob": True, "👍\tcid": True, "🎉\tbob": True},
    }
    line = format_message(4, message)
    assert line.startswith("#4 [")
    assert line.endswith("ann: hi  (🎉 1, 👍 2)")
    assert reaction_counts({}) == {}


def test_colors_are_stable_per_name() -> None:
    assert color_for("ann") == color_for("ann")
    assert color_for("ann").startswith("#")

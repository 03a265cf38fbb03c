"""`performer chat`: a terminal chat on the Python SDK, sharing the browser demo's schema.

Document: root `messages`, a Y.Array of Y.Map {id, user, text, ts, reactions}, where
`reactions` is a flat Y.Map keyed by emoji + TAB + user. Presence: `{user: {name, color},
typing}`. Lines typed are sent as messages; the chat works offline (messages wait in the
local store) and catches up on reconnect.

Commands: `/quit`, `/who`, `/list` (number the messages anew), `/react N EMOJI` (toggle
your reaction on message N).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import threading
import time
import uuid
from datetime import datetime
from typing import Any, TextIO

from pycrdt import Array, Map, TransactionEvent

from engine.client.connection import Client, connect
from engine.client.status import Status

COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6")
HELP = "commands: /list, /who, /react N EMOJI, /quit"
QUIT_SAVE_TIMEOUT = 3.0


def color_for(name: str) -> str:
    """A stable color per user name, so everybody sees the same one."""
    return COLORS[hashlib.sha256(name.encode("utf-8")).digest()[0] % len(COLORS)]


def new_message(user: str, text: str) -> Map[Any]:
    """A chat message as the shared schema has it (`reactions` created with it)."""
    return Map(
        {
            "id": uuid.uuid4().hex,
            "user": user,
            "text": text,
            "ts": time.time() * 1000,  # milliseconds, a float: a JS number, as Date.now()
            "reactions": Map(),
        }
    )


def toggle_reaction(message: Map[Any], emoji: str, user: str) -> None:
    """Add our reaction, or take it back (the key is emoji + TAB + user)."""
    reactions = message["reactions"]
    key = f"{emoji}\t{user}"
    if key in reactions:
        del reactions[key]
    else:
        reactions[key] = True


def reaction_counts(reactions: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in reactions:
        emoji, _, _user = key.partition("\t")
        counts[emoji] = counts.get(emoji, 0) + 1
    return counts


def format_message(number: int, message: dict[str, Any]) -> str:
    """One line per message: `#3 [14:02] ann: hello  (👍 2)`."""
    ts = message.get("ts")
    when = (
        datetime.fromtimestamp(ts / 1000).strftime("%H:%M")
        if isinstance(ts, int | float)
        else "--:--"
    )
    line = f"#{number} [{when}] {message.get('user', '?')}: {message.get('text', '')}"
    reactions = message.get("reactions")
    counts = reaction_counts(reactions) if isinstance(reactions, dict) else {}
    if counts:
        line += "  (" + ", ".join(f"{emoji} {n}" for emoji, n in sorted(counts.items())) + ")"
    return line


class ChatView:
    """Prints what changed since the last refresh: new messages, new reactions, presence."""

    def __init__(self, client: Client, out: TextIO) -> None:
        self.client = client
        self.out = out
        self.messages: Array[Any] = client.doc.get("messages", type=Array)
        self._lines: dict[str, str] = {}  # message id -> what was printed for it
        self._present: dict[int, tuple[str, bool]] = {}  # client id -> (name, typing)

    def on_doc_change(self, _event: TransactionEvent) -> None:
        """Print after the transaction, not from inside it."""
        asyncio.get_running_loop().call_soon(self.refresh_messages)

    def on_awareness_change(self, _topic: str, _change: tuple[dict[str, Any], Any]) -> None:
        asyncio.get_running_loop().call_soon(self.refresh_presence)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def refresh_messages(self) -> None:
        for number, message in enumerate(self.messages.to_py() or [], start=1):
            if not isinstance(message, dict):
                continue
            key = str(message.get("id", number))
            line = format_message(number, message)
            # Compare without the number: a concurrent insert above shifts numbers, and
            # that alone is no reason to print a message again.
            unnumbered = line.partition(" ")[2]
            if self._lines.get(key) != unnumbered:
                self._lines[key] = unnumbered
                self.say(line)

    def list_all(self) -> None:
        self._lines.clear()
        self.refresh_messages()

    def refresh_presence(self) -> None:
        me = self.client.awareness.client_id
        now: dict[int, tuple[str, bool]] = {}
        for client_id, state in self.client.awareness.states.items():
            user = state.get("user") if isinstance(state, dict) else None
            if client_id != me and isinstance(user, dict):
                now[client_id] = (str(user.get("name", "?")), state.get("typing") is True)
        for client_id, (name, typing) in now.items():
            before = self._present.get(client_id)
            if before is None:
                self.say(f"* {name} is here")
            if typing and not (before and before[1]):
                self.say(f"* {name} is typing…")
        for client_id, (name, _typing) in self._present.items():
            if client_id not in now:
                self.say(f"* {name} left")
        self._present = now

    def who(self) -> str:
        names = sorted({name for name, _typing in self._present.values()})
        return "here: " + (", ".join(names) if names else "nobody else")


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Read stdin on a daemon thread (it may block forever; it must not keep us alive)."""

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="chat-stdin", daemon=True).start()


def _handle_line(line: str, view: ChatView, user: str) -> None:
    if line.startswith("/list"):
        view.list_all()
    elif line.startswith("/who"):
        view.say(view.who())
    elif line.startswith("/react"):
        parts = line.split()
        count = len(view.messages)
        if len(parts) != 3 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= count:
            view.say(f"usage: /react N EMOJI with N from 1 to {count}")
            return
        toggle_reaction(view.messages[int(parts[1]) - 1], parts[2], user)
    elif line.startswith("/"):
        view.say(HELP)
    elif line.strip():
        view.messages.append(new_message(user, line))


async def run_chat(url: str, room: str, user: str, token: str | None, store_path: str) -> int:
    """Run the chat until `/quit` or end of input; returns the process exit code."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    async with connect(url, room, token=token, store_path=store_path) as client:
        view = ChatView(client, sys.stdout)
        client.doc.observe(view.on_doc_change)
        client.awareness.observe(view.on_awareness_change)

        def on_status(status: Status) -> None:
            view.say(f"-- {status}")
            if client.error is not None:
                lines.put_nowait(None)

        client.on_status(on_status)
        client.awareness.set_local_state(
            {"user": {"name": user, "color": color_for(user)}, "typing": False}
        )
        view.say(f"-- room {room} as {user}; {HELP}")
        view.refresh_messages()
        _stdin_lines(loop, lines)
        while (line := await lines.get()) is not None and line.strip() != "/quit":
            _handle_line(line, view, user)
        if client.error is not None:
            print(f"error: {client.error}", file=sys.stderr, flush=True)
            return 2
        if client.status == "synced":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.saved(), QUIT_SAVE_TIMEOUT)
        if client.status != "saved":
            view.say("-- some messages are not on the server yet; they are kept and sent next time")
    return 0

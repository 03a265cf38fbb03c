"""Hooks modules the hook tests start real servers with (`--hooks tests.server.hooks_app:X`).

Deliveries are written as JSON lines to the file named by PERFORMER_TEST_CHANGES, flushed
and fsynced per line, so a test can read them after the server was killed.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Array

from server import Change, Grant, Hooks, Rooms


def delivered(path: Path) -> list[dict[str, Any]]:
    """What Recorder wrote to `path` so far, one dict per delivery."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class AppAuth(Hooks):
    """The application's own users: tokens are looked up, not verified as JWTs."""

    USERS = {"ann-token": Grant(user="ann", mode="write"), "rita-token": Grant("rita", "read")}

    async def authenticate(self, token: str | None, room: str) -> Grant | None:
        if token == "boom":
            raise RuntimeError("user database unreachable")
        if token == "not-a-grant":
            return "yes please"  # type: ignore[return-value]
        if room.startswith("private-") and token != "ann-token":
            return None
        return self.USERS.get(token or "")


def _record(change: Change) -> None:
    path = os.environ["PERFORMER_TEST_CHANGES"]
    line = json.dumps({"room": change.room, "seq": change.seq, "user": change.user,
                       "bytes": len(change.update)})  # fmt: skip
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def _entered(change: Change) -> None:
    with open(os.environ["PERFORMER_TEST_ENTERED"], "a", encoding="utf-8") as out:
        out.write(f"{change.seq}\n")


def _held() -> bool:
    return Path(os.environ["PERFORMER_TEST_HOLD"]).exists()


class Recorder(Hooks):
    """Records every change; in rooms named `stuck-*` it hangs until the process ends,
    in rooms named `failing-*` it raises on every change. In rooms named `held-*` it
    first appends the seq to the file named by PERFORMER_TEST_ENTERED, then waits while
    the file named by PERFORMER_TEST_HOLD exists (a test kills the process meanwhile)."""

    async def on_change(self, change: Change) -> None:
        if change.room.startswith("stuck-"):
            await asyncio.Event().wait()
        if change.room.startswith("held-"):
            _entered(change)
            while _held():
                await asyncio.sleep(0.05)
        if change.room.startswith("failing-"):
            raise RuntimeError(f"cannot index seq {change.seq}")
        _record(change)


class ListBot(Hooks):
    """Answers every "ping-N" pushed to the room's `list` with "pong-N", as user "bot"."""

    async def on_start(self, rooms: Rooms) -> None:
        self.rooms = rooms

    async def on_change(self, change: Change) -> None:
        if change.user == "bot":
            return
        async with self.rooms.edit(change.room, user="bot") as doc:
            items = doc.get("list", type=Array)
            present = set(items.to_py() or [])
            for item in list(present):
                if isinstance(item, str) and item.startswith("ping-"):
                    answer = "pong-" + item[5:]
                    if answer not in present:
                        items.append(answer)


class StatelessRecorder(Hooks):
    """Records every stateless message (room, user, payload) as a JSON line."""

    async def on_stateless(self, room: str, user: str | None, payload: str) -> None:
        _append_line({"room": room, "user": user, "payload": payload})


def _append_line(value: dict[str, Any]) -> None:
    with open(os.environ["PERFORMER_TEST_CHANGES"], "a", encoding="utf-8") as out:
        out.write(json.dumps(value) + "\n")

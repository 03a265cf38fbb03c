"""What a room actor works on: its inbox items and what one round of them produces."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from engine.protocol import Message
from engine.rules.authorship import AuthoredRange
from engine.storage import Append
from engine.update_scan import UpdateShape
from server.rooms.peer import Frame, Peer


@dataclass(slots=True)
class DirectUpdate:
    """An update made outside the sync protocol (REST, server-side edits, restores).
    `server`: made by the server itself (server-side edits, restores), with its authority:
    the rules do not judge it; `user` is who it is attributed to."""

    update: bytes
    user: str | None
    future: asyncio.Future[int] = field(repr=False)
    restore_of: int | None = None
    server: bool = False
    rejected: str | None = None  # set when a rule or Hooks.check undid part of it
    shape: UpdateShape | None = None  # its scan, when the server made it off the loop


Work = tuple[Peer, Message] | DirectUpdate


@dataclass(slots=True)
class Batch:
    """What one round produced, held back until its commit is durable."""

    appends: list[Append] = field(default_factory=list)
    updates: list[tuple[Peer | None, bytes]] = field(default_factory=list)
    replies: list[tuple[Peer, Frame]] = field(default_factory=list)
    acks: dict[int, tuple[Peer, int]] = field(default_factory=dict)  # peer, count to ack
    http: list[tuple[DirectUpdate, int]] = field(default_factory=list)
    refusals: int = 0  # appends a rule or Hooks.check partly undid
    authored: list[AuthoredRange] = field(default_factory=list)  # the server's, for whom

"""SyncStep2 answers shared by every client that joins a room at the same moment.

A 17 MB room costs ~25 ms and 17 MB to encode, so five joiners must not cost five times
that: answers are kept by state vector while the document stays at the version they were
encoded at (and for a few seconds at most), and everyone asking gets the same bytes.
"""

from __future__ import annotations

import asyncio

from engine.document import RoomDocument
from engine.protocol import SyncStep2, Update, encode, encode_parts
from server.rooms.peer import Frame

EMPTY_STATE_VECTOR = b"\x00"  # what a client with nothing sends in its SyncStep1
LARGE_PAYLOAD = 64 * 1024  # payloads from here on are sent as shared parts, never copied
ANSWER_CACHE_SECONDS = 5.0  # how long SyncStep2 answers are kept for further joiners
ANSWER_CACHE_ENTRIES = 8


def sync_frames(pieces: list[bytes]) -> list[Frame]:
    """Updates that together make the answer, in order, the last one as the SyncStep2:
    a client counts itself synced on SyncStep2, so it holds everything by then."""
    frames: list[Frame] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        message: SyncStep2 | Update = SyncStep2(piece) if last else Update(piece)
        frames.append(encode_parts(message) if len(piece) >= LARGE_PAYLOAD else encode(message))
    return frames


class Answers:
    """Args: first_sync: the stored pieces the document was just built from (snapshot,
    then log tail); a client with nothing gets them as they are, no encoding."""

    def __init__(self, doc: RoomDocument, first_sync: list[bytes] | None = None) -> None:
        self.doc = doc
        self._answers: dict[bytes, list[Frame]] = {}
        self._version = doc.version
        self._expiry: asyncio.TimerHandle | None = None
        if first_sync:
            self._remember(EMPTY_STATE_VECTOR, sync_frames(first_sync))

    def answer(self, state_vector: bytes) -> list[Frame]:
        """SyncStep2 for `state_vector`, encoded once per document version."""
        if self._version != self.doc.version:
            self._answers.clear()
            self._version = self.doc.version
        frames = self._answers.get(state_vector)
        if frames is None:
            frames = sync_frames([self.doc.diff(state_vector)])
            self._remember(state_vector, frames)
        return frames

    def _remember(self, state_vector: bytes, frames: list[Frame]) -> None:
        if len(self._answers) >= ANSWER_CACHE_ENTRIES:
            self._answers.clear()
        self._answers[state_vector] = frames
        if self._expiry is None:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(ANSWER_CACHE_SECONDS, self.forget)

    def forget(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = None
        self._answers.clear()

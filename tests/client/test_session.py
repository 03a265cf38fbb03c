"""SyncSession without a network: the handshake, the local edit queue and ack accounting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pycrdt import Array, Awareness, Doc

from engine.live_doc import LiveDoc
from engine.protocol import (
    AwarenessUpdate,
    Message,
    PermissionDeniedMessage,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    decode,
    encode,
)
from engine.session import Phase, SyncSession


class DocReplica:
    """A `LiveDoc` as the session's replica, recording what came from the server."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.live = LiveDoc(clock=clock)
        self.doc: Doc[Any] = self.live.doc
        self.remote: list[bytes] = []

    @property
    def pending_since(self) -> float | None:
        return self.live.pending_since

    def state_vector(self) -> bytes:
        return self.live.state_vector()

    def diff(self, state_vector: bytes) -> bytes:
        return self.live.diff(state_vector)

    def apply_remote(self, update: bytes) -> None:
        self.remote.append(update)
        self.live.apply(update)


def items(doc: Doc[Any]) -> list[Any]:
    return list(doc.get("items", type=Array).to_py() or [])


def handshake(session: SyncSession, server: Doc[Any], mark: int = 0) -> list[Message]:
    """Play the server's side of the opening: its step 1 and its answer to ours."""
    [step1, *_] = session.open()
    assert isinstance(step1, SyncStep1)
    replies = session.receive(SyncStep1(bytes(server.get_state())), mark)
    for reply in replies:
        if isinstance(reply, SyncStep2):
            server.apply_update(reply.update)
    session.receive(SyncStep2(bytes(server.get_update(step1.state_vector))), mark)
    return replies


def test_handshake_exchanges_what_each_side_lacks() -> None:
    replica = DocReplica()
    replica.doc.get("items", type=Array).append("local")
    server: Doc[Any] = Doc()
    server.get("items", type=Array).append("server")
    session = SyncSession(replica)

    handshake(session, server)

    assert session.phase is Phase.SYNCED
    assert sorted(items(replica.doc)) == ["local", "server"]
    assert sorted(items(server)) == ["local", "server"]


def test_phase_is_opening_until_the_server_answers_and_asks() -> None:
    session = SyncSession(DocReplica())
    phases = [session.phase]
    session.receive(SyncStep2(bytes(Doc().get_update())), mark=0)
    phases.append(session.phase)  # we have not answered the server's step 1 yet
    session.receive(SyncStep1(bytes(Doc().get_state())), mark=0)
    phases.append(session.phase)
    assert phases == [Phase.OPENING, Phase.OPENING, Phase.SYNCED]


def test_edits_before_the_answer_travel_in_step2_not_one_by_one() -> None:
    replica = DocReplica()
    session = SyncSession(replica)
    session.open()
    replica.doc.get("items", type=Array).append("early")
    assert session.local_update(b"ignored", mark=1) == []

    [reply] = session.receive(SyncStep1(bytes(Doc().get_state())), mark=1)

    server: Doc[Any] = Doc()
    assert isinstance(reply, SyncStep2)
    server.apply_update(reply.update)
    assert items(server) == ["early"]
    assert session.sent_updates == 1


def test_edits_after_the_answer_are_sent_as_updates() -> None:
    replica = DocReplica()
    session = SyncSession(replica)
    handshake(session, Doc())
    assert session.local_update(b"\x01", mark=2) == [Update(b"\x01")]
    assert session.sent_updates == 2  # step 2 + this update


def test_acknowledgements_confirm_marks_in_order() -> None:
    session = SyncSession(DocReplica())
    session.receive(SyncStep1(bytes(Doc().get_state())), mark=3)  # message 1 covers mark 3
    session.local_update(b"a", mark=4)  # message 2
    session.local_update(b"b", mark=6)  # message 3

    session.receive(Saved(count=1, seq=10), mark=6)
    assert session.confirmed_mark == 3
    assert session.unacknowledged == 2

    session.receive(Saved(count=3, seq=12), mark=6)
    assert session.confirmed_mark == 6
    assert session.unacknowledged == 0


def test_stale_and_excessive_acknowledgements_change_nothing_wrongly() -> None:
    session = SyncSession(DocReplica())
    session.receive(SyncStep1(bytes(Doc().get_state())), mark=1)
    session.local_update(b"a", mark=2)
    session.receive(Saved(count=2, seq=5), mark=2)
    session.receive(Saved(count=1, seq=4), mark=2)  # late duplicate
    assert session.acked_updates == 2
    session.receive(Saved(count=99, seq=9), mark=2)  # never more than we sent
    assert session.acked_updates == 2
    assert session.confirmed_mark == 2


def test_remote_updates_are_applied_through_the_replica() -> None:
    replica = DocReplica()
    session = SyncSession(replica)
    other: Doc[Any] = Doc()
    other.get("items", type=Array).append("hello")
    update = bytes(other.get_update())

    assert session.receive(Update(update), mark=0) == []

    assert replica.remote == [update]
    assert items(replica.doc) == ["hello"]


def test_presence_is_announced_on_open_and_on_query() -> None:
    replica = DocReplica()
    awareness = Awareness(replica.doc)
    awareness.set_local_state({"user": {"name": "ann", "color": "#f00"}, "typing": False})
    session = SyncSession(replica, awareness)

    opened = session.open()
    [answer] = session.receive(QueryAwareness(), mark=0)

    assert isinstance(opened[1], AwarenessUpdate)
    assert answer == opened[1]
    peer = Awareness(Doc())
    peer.apply_awareness_update(answer.payload, "test")
    assert peer.states[awareness.client_id]["user"]["name"] == "ann"


def test_remote_presence_lands_in_awareness() -> None:
    replica = DocReplica()
    awareness = Awareness(replica.doc)
    session = SyncSession(replica, awareness)
    peer = Awareness(Doc())
    peer.set_local_state({"user": {"name": "bob", "color": "#00f"}, "typing": True})
    payload = peer.encode_awareness_update([peer.client_id])

    session.receive(AwarenessUpdate(payload), mark=0)

    assert awareness.states[peer.client_id]["typing"] is True


def test_permission_denied_is_recorded() -> None:
    session = SyncSession(DocReplica())
    session.receive(PermissionDeniedMessage("read-only token"), mark=0)
    assert session.denied == ["read-only token"]


def test_session_messages_survive_the_wire_codec() -> None:
    replica = DocReplica()
    replica.doc.get("items", type=Array).append("x")
    session = SyncSession(replica, Awareness(replica.doc))
    for message in session.open():
        assert decode(encode(message)) == message

"""Small helpers over Yjs binary formats that pycrdt leaves to the caller."""

from __future__ import annotations

from engine.errors import ProtocolError
from engine.protocol import Reader
from engine.update_scan import scan_update

EMPTY_UPDATE = b"\x00\x00"


def decode_state_vector(state_vector: bytes, *, max_entries: int | None = None) -> dict[int, int]:
    """Decode `varuint(n) n x (client, clock)` into a dict.

    Raises:
        ProtocolError: malformed, or more than `max_entries` clients (a cheap guard against
            a 10^6-entry state vector costing the server a large diff computation).
    """
    reader = Reader(state_vector)
    count = reader.varuint()
    if max_entries is not None and count > max_entries:
        raise ProtocolError(0, f"state vector has {count} entries (limit {max_entries})")
    if count > len(state_vector):
        raise ProtocolError(0, f"state vector claims {count} entries")
    clocks: dict[int, int] = {}
    for _ in range(count):
        client = reader.varuint()
        clocks[client] = reader.varuint()
    reader.expect_end()
    return clocks


def update_clients(update: bytes) -> tuple[int, ...]:
    """The Yjs client ids that authored structs in `update` (for the audit trail)."""
    try:
        return scan_update(update).clients
    except ProtocolError:
        return ()

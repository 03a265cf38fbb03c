"""Redis key names, shared by the Redis log store and the server's Redis fan-out."""

from __future__ import annotations

PREFIX = "performer:"


def key(kind: str, room: str) -> str:
    """Keys end with the whole room name, so `a:b` and `a` + `b:` never collide."""
    return f"{PREFIX}{kind}:{room}"


def seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[1])

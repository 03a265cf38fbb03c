"""Room names: what is allowed, and why.

Names are keys, never file paths: the store maps each name to a numeric id, so no name can
reach outside the data directory. The rules below keep names unambiguous for people and
logs: one Unicode normal form (two names that look the same are the same bytes), no
control or invisible formatting characters, no path separators, a length cap.
"""

from __future__ import annotations

import unicodedata

from engine.errors import RoomNameError

MAX_ROOM_NAME_BYTES = 128
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_FORBIDDEN_CHARS = set("/\\")


def validate_room_name(name: str) -> str:
    """Return `name` if it is an allowed room name.

    Raises:
        RoomNameError: with the rule it breaks.
    """
    if not name:
        raise RoomNameError("room name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_ROOM_NAME_BYTES:
        raise RoomNameError(f"room name is longer than {MAX_ROOM_NAME_BYTES} bytes")
    if name != name.strip():
        raise RoomNameError("room name starts or ends with white space")
    if name in (".", ".."):
        raise RoomNameError("room name may not be '.' or '..'")
    for char in name:
        if char in _FORBIDDEN_CHARS:
            raise RoomNameError(f"room name may not contain {char!r}")
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise RoomNameError(f"room name contains control or format character U+{ord(char):04X}")
    if unicodedata.normalize("NFC", name) != name:
        raise RoomNameError("room name is not in Unicode normal form C")
    return name

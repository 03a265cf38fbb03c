"""The REST calls a client makes beside its WebSocket: restore, versions, the JSON view.

The REST base is derived from the WebSocket URL the client was given
(`ws://HOST:PORT/rooms` -> `http://HOST:PORT`); errors come back as the engine's
exceptions, read from the one error table (`engine.errors.error_for_status`).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from engine.errors import error_for_status


def rest_base(ws_url: str) -> URL:
    """`ws://h:p/prefix/rooms` -> `http://h:p/prefix` (wss -> https)."""
    url = URL(ws_url.rstrip("/"))
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    path = url.path[: -len("/rooms")] if url.path.endswith("/rooms") else url.path
    return url.with_scheme(scheme).with_path(path or "/").with_query(None)


class RoomApi:
    def __init__(self, ws_url: str, room: str, token: str | None) -> None:
        self.base = rest_base(ws_url) / "v1" / "rooms" / room
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        async with aiohttp.ClientSession(headers=self.headers) as http:
            url = self.base / path
            async with http.request(method, url, json=body, params=params) as response:
                data = await response.json(content_type=None)
                if response.status >= 400:
                    message = str(data.get("error", data))
                    retry_after = response.headers.get("Retry-After")
                    raise error_for_status(response.status, message, retry_after)
                return data

    async def restore(self, seq: int) -> int:
        return int((await self.call("POST", "restore", {"seq": seq}))["seq"])

    async def name_version(self, name: str) -> int:
        return int((await self.call("POST", "versions", {"name": name}))["seq"])

    async def versions(self) -> list[dict[str, Any]]:
        """Every named version, oldest first (the server lists them in pages)."""
        out: list[dict[str, Any]] = []
        params = {"limit": "1000"}
        while True:
            page = await self.call("GET", "versions", params=params)
            out += page["versions"]
            if not page.get("next"):
                return out
            params = {"limit": "1000", "after": str(page["next"])}

"""An access log that never writes a token: aiohttp's format, with `token=` values blanked.

Browsers cannot set headers on a WebSocket, so the demo and the JS client pass their
token as `?token=`, and aiohttp's default access log writes every request line, query
included. An application that embeds the server passes this class to its runner:

    web.run_app(app, access_log_class=TokenRedactingAccessLogger)

(`performer serve` writes no access log at all.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

REDACTED = "REDACTED"
_TOKEN_PARAM = re.compile(r"(?i)([?&](?:access_)?token=)[^&#\s\"]*")


def redact_tokens(text: str) -> str:
    """`/rooms/a?token=eyJ...&ack=1` -> `/rooms/a?token=REDACTED&ack=1`."""
    return _TOKEN_PARAM.sub(r"\1" + REDACTED, text)


class TokenRedactingAccessLogger(AccessLogger):
    """aiohttp's AccessLogger (same format, same `extra` fields) with every `token=`
    query value in the request line and the Referer replaced by REDACTED."""

    def _format_line(
        self, request: BaseRequest, response: StreamResponse, time: float
    ) -> Iterable[tuple[str | tuple[str, str], str]]:
        return [
            (key, redact_tokens(value) if isinstance(value, str) else value)
            for key, value in super()._format_line(request, response, time)
        ]

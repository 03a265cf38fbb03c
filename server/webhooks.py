"""Signed webhooks: each room's new log entries, coalesced, POSTed in order, at least once.

    POST URL  {"room", "from_seq", "to_seq", "users", "ts"}
    X-Performer-Signature: sha256=HEX   (HMAC-SHA256 of the raw body with the secret)
    X-Performer-Delivery: ID            (the same on every retry of one request)

Delivery runs on server/delivery.py: the room's cursor is stored, so a restart (even kill
-9) sends what was not acknowledged; at most one request per room per `min_interval`
(everything committed meanwhile goes into the next one); retried on server/parking.py's
schedule (about a day) on a non-2xx answer, a refused connection, a timeout or a redirect
(redirects are not followed: a signed body should reach the URL it was meant for); parked
after `max_attempts` and resumed once a probe gets through. Receivers de-duplicate by
(room, to_seq).

The URL may carry credentials (`https://user:pass@host/hook?apikey=...`); what is logged
or stored in a parked record names only scheme, host, port and path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from engine.storage.records import UpdateRecord
from server.parking import MAX_ATTEMPTS, RETRY_SCHEDULE

SIGNATURE_HEADER = "X-Performer-Signature"
DELIVERY_HEADER = "X-Performer-Delivery"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shown_url(url: str) -> str:
    """The URL without userinfo, query or fragment: what may appear in a log line."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<webhook URL>"


def _secrets_of(url: str) -> list[str]:
    """The parts of `url` that must not be written anywhere, longest first."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return [url]
    parts = [url, str(parsed), parsed.raw_query_string, parsed.query_string,
             parsed.raw_password or "", parsed.password or "", parsed.raw_user or "",
             parsed.user or "", parsed.raw_fragment]  # fmt: skip
    return sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True)


class WebhookFailed(Exception):
    """One attempt failed (status, timeout, refused connection); it will be retried."""


@dataclass(frozen=True, slots=True)
class _Request:
    from_seq: int
    to_seq: int
    delivery_id: str
    body: bytes


class WebhookConsumer:
    name = "webhook"
    batch_limit = 1000
    max_attempts: int | None = MAX_ATTEMPTS

    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        min_interval: float = 1.0,
        timeout: float = 10.0,
        retry_seconds: float = RETRY_SCHEDULE[0],
        probe_seconds: float | None = 300.0,
    ) -> None:
        self.retry_seconds = retry_seconds
        self.probe_seconds = probe_seconds
        self.url = url
        self.shown_url = shown_url(url)
        self._secrets = _secrets_of(url)
        self.secret = secret
        self.min_interval = min_interval
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._pending: dict[str, _Request] = {}  # a request being retried, per room
        self._session: aiohttp.ClientSession | None = None

    def scrub(self, text: str) -> str:
        """`text` (an exception's words) with the URL's credentials and query cut out."""
        for secret in self._secrets:
            text = text.replace(secret, self.shown_url if "/" in secret else "***")
        return text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _request(self, room: str, records: list[UpdateRecord]) -> _Request:
        """The request for this batch: on a retry, exactly the one that failed."""
        pending = self._pending.get(room)
        if pending is not None and pending.from_seq == records[0].seq:
            return pending
        batch = records
        users = sorted({r.user for r in batch if r.user is not None})
        payload = {"room": room, "from_seq": batch[0].seq, "to_seq": batch[-1].seq,
                   "users": users, "ts": batch[-1].ts}  # fmt: skip
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = hashlib.sha256(f"{room}\0{batch[0].seq}\0{time.time()}".encode()).hexdigest()
        request = _Request(batch[0].seq, batch[-1].seq, delivery_id[:32], body)
        self._pending[room] = request
        return request

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        request = self._request(room, records)
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: request.delivery_id}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, request.body)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.post(
                self.url, data=request.body, headers=headers, allow_redirects=False
            ) as response:
                if not 200 <= response.status < 300:
                    raise WebhookFailed(f"{self.shown_url} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WebhookFailed(f"{self.shown_url}: {self.scrub(repr(exc))}") from None
        del self._pending[room]
        return request.to_seq

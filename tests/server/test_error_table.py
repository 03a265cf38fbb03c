"""One error table, four readers: the REST middleware, the WebSocket layer, the Python
client and the browser client must agree on what every close code means."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine.client.errors import CloseAction, close_action
from engine.errors import (
    ERROR_TABLE,
    Busy,
    Close,
    Conflict,
    PermissionDenied,
    ProtocolError,
    QuotaExceeded,
    Retry,
    RoomNotFound,
    Unauthorized,
    Unavailable,
    error_for_status,
    meaning_of,
)
from tests.conftest import require_node

ROOT = Path(__file__).resolve().parents[2]


def test_every_close_code_has_one_meaning_and_every_error_a_status() -> None:
    closes = [int(m.close) for kind, m in ERROR_TABLE if kind is None]
    assert len(closes) == len(set(closes))
    assert {int(m.close) for _, m in ERROR_TABLE} == {int(code) for code in Close}
    assert meaning_of(QuotaExceeded("x")).http == 413  # the subclass row wins
    assert meaning_of(Unauthorized("x")).close == Close.UNAUTHORIZED
    assert meaning_of(ValueError("not ours")).http == 500


def test_http_statuses_map_back_to_the_same_errors() -> None:
    for error in (Unauthorized("a"), PermissionDenied("b"), RoomNotFound("c"), Conflict("d"),
                  Unavailable("e")):  # fmt: skip
        status = meaning_of(error).http
        assert status is not None and type(error_for_status(status, "m")) is type(error)
    assert isinstance(error_for_status(400, "m"), ProtocolError)
    busy = error_for_status(503, "m", retry_after="7")
    assert isinstance(busy, Busy) and busy.retry_after == 7


def test_the_python_client_follows_the_table() -> None:
    for _, meaning in ERROR_TABLE:
        action = close_action(int(meaning.close))
        expected = {Retry.NEVER: {CloseAction.AUTH, CloseAction.REJECT},
                    Retry.BACKOFF: {CloseAction.RETRY},
                    Retry.SLOW_DOWN: {CloseAction.SLOW_DOWN}}[meaning.retry]  # fmt: skip
        assert action in expected, (meaning.close, action)


def test_the_browser_client_follows_the_table() -> None:
    node = require_node()
    codes = sorted({int(m.close) for _, m in ERROR_TABLE})
    script = (
        "import { isPermanentClose as p, isSlowDownClose as s } from './client_js/src/backoff.js';"
        f"console.log(JSON.stringify({codes}.map(c => [c, p(c), s(c)])))"
    )
    out = subprocess.run([node, "--input-type=module", "-e", script], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    verdicts = {code: (permanent, slow) for code, permanent, slow in json.loads(out.stdout)}
    for _, meaning in ERROR_TABLE:
        permanent, slow = verdicts[int(meaning.close)]
        assert permanent == (meaning.retry is Retry.NEVER), meaning
        assert slow == (meaning.retry is Retry.SLOW_DOWN), meaning


def test_errors_survive_a_trip_to_a_worker_process() -> None:
    """Restores and JSON views run in a worker process; their errors come back pickled."""
    import pickle

    from engine.errors import CorruptRecord

    for error in (ProtocolError(3, "bad"), CorruptRecord("r", "log", 7, "torn"), Conflict("x")):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)

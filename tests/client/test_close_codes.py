"""The client's reading of the server's close codes, kept in one table."""

from __future__ import annotations

from engine.client import AuthError, ConnectionRejected
from engine.client.errors import CLOSE_ACTIONS, CloseAction, close_action, close_error
from engine.errors import Close


def test_the_client_acts_only_on_codes_the_server_sends() -> None:
    """4429 was treated as "slow down", but the server throttles by reading slower."""
    assert set(CLOSE_ACTIONS) <= {int(code) for code in Close}
    assert close_action(4429) is CloseAction.RETRY


def test_auth_and_rejection_closes_end_the_client_and_the_rest_reconnect() -> None:
    assert isinstance(close_error(4401, ""), AuthError)
    assert isinstance(close_error(4403, "token does not grant this room"), AuthError)
    assert isinstance(close_error(4400, ""), ConnectionRejected)
    assert isinstance(close_error(4413, ""), ConnectionRejected)
    assert isinstance(close_error(1009, ""), ConnectionRejected)  # the same frame fails again
    for code in (None, 1001, 1006, 4408, 4503):
        assert close_error(code, "") is None
    assert close_action(4408) is close_action(4503) is CloseAction.SLOW_DOWN


def test_a_close_without_a_reason_gets_the_tables_words() -> None:
    error = close_error(4401, "")
    assert error is not None and "invalid or expired token" in str(error)

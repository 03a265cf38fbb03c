"""Performer Sync's server: aiohttp app, room actors, hooks for applications.

from server import Hooks, Grant, Change, Verdict, create_app, Config
"""

from server.app import create_app
from server.config import Config
from server.hooks import AuthRequest, Change, Edit, EditChange, Grant, Hooks, Verdict
from server.http.access_log import TokenRedactingAccessLogger
from server.rooms.access import Rooms

__all__ = [
    "AuthRequest",
    "Change",
    "Config",
    "Edit",
    "EditChange",
    "Grant",
    "Hooks",
    "Rooms",
    "TokenRedactingAccessLogger",
    "Verdict",
    "create_app",
]

"""Performer Sync's server: aiohttp app, room actors, hooks for applications.

from server import Hooks, Grant, Change, create_app, Config
"""

from server.app import create_app
from server.config import Config
from server.hooks import Change, Grant, Hooks
from server.rooms.access import Rooms

__all__ = ["Change", "Config", "Grant", "Hooks", "Rooms", "create_app"]

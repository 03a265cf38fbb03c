"""Typed application state keys (aiohttp AppKey), shared by the route modules."""

from __future__ import annotations

from aiohttp import web

from server.auth import Authorizer
from server.backend import Backend
from server.config import Config
from server.metrics import Metrics
from server.registry import RoomRegistry

CONFIG = web.AppKey("config", Config)
BACKEND = web.AppKey("backend", Backend)
REGISTRY = web.AppKey("registry", RoomRegistry)
AUTHORIZER = web.AppKey("authorizer", Authorizer)
METRICS = web.AppKey("metrics", Metrics)

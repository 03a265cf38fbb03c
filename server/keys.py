"""Typed application state keys (aiohttp AppKey), shared by the route modules."""

from __future__ import annotations

from aiohttp import web

from engine.storage import DocStore
from server.auth import Authorizer
from server.committer import GroupCommitter
from server.config import Config
from server.metrics import Metrics
from server.registry import RoomRegistry

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", DocStore)
COMMITTER = web.AppKey("committer", GroupCommitter)
REGISTRY = web.AppKey("registry", RoomRegistry)
AUTHORIZER = web.AppKey("authorizer", Authorizer)
METRICS = web.AppKey("metrics", Metrics)

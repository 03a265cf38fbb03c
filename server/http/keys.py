"""Typed application state keys (aiohttp AppKey), shared by the route modules."""

from __future__ import annotations

from aiohttp import web

from server.auth import Authorizer
from server.compute import Compute
from server.compute_lane import ComputeLane
from server.config import Config
from server.hooks import Hooks
from server.metrics import Metrics
from server.page_rate import PageRate
from server.page_reads import PageReads
from server.restore_rate import RestoreRate
from server.rooms.access import Rooms
from server.rooms.feeds import FeedHub
from server.rooms.registry import RoomRegistry
from server.rooms.store import RoomStore

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", RoomStore)
HOOKS = web.AppKey("hooks", Hooks)
ROOMS = web.AppKey("rooms", Rooms)
FEEDS = web.AppKey("feeds", FeedHub)
COMPUTE = web.AppKey("compute", Compute)  # big rooms' snapshots only
LANE = web.AppKey("lane", ComputeLane)  # JSON views and restores, bounded
PAGES = web.AppKey("pages", PageReads)  # change and history pages in flight, per caller
PAGE_RATE = web.AppKey("page_rate", PageRate)  # bytes of pages per second, per caller
RESTORE_RATE = web.AppKey("restore_rate", RestoreRate)  # bytes of restores per second, per room
REGISTRY = web.AppKey("registry", RoomRegistry)
AUTHORIZER = web.AppKey("authorizer", Authorizer)
METRICS = web.AppKey("metrics", Metrics)

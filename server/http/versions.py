"""The room as JSON, restore to any version, and named versions.

    GET  /v1/rooms/{room}/json[?at=SEQ|NAME][&types=ROOT:text,ROOT2:map]
    POST /v1/rooms/{room}/restore   {"seq": N}    -> {"seq": M, "restore_of": N}
    POST /v1/rooms/{room}/versions  {"name": S}   -> {"name", "seq"}
    GET  /v1/rooms/{room}/versions[?limit=N&after=NAME]
                                                  -> {"room", "versions": [{"name", "seq"}], "next"}

The diff and the JSON view run in a worker process, through the bounded compute lane
(server/compute_lane.py): for a big room they take seconds of pycrdt work that would
otherwise hold the event loop, and no caller may take more than its share of it (503 +
Retry-After past the limits). JSON views are cached by (room, seq, types).

A restore is an edit, not a rewind: one forward update (engine/restore.py) that makes the
room's content equal to its content at N, submitted through the room's actor like any
client's edit (durable, broadcast, in the history under the caller with `restore_of`).
Nothing in the log is erased; clients stay connected; edits made offline meanwhile merge
on top of it by the CRDT's rules.
"""

from __future__ import annotations

import json
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web

from engine.document import rebuild, rebuild_whole
from engine.errors import Conflict, CorruptRecord, ProtocolError, RoomNotFound
from engine.jsonview import to_json
from engine.restore import restore_update
from engine.storage import DocStore
from engine.update_scan import UpdateShape, scan_update
from engine.yjs import EMPTY_UPDATE
from server.compute_lane import CallerGone
from server.http.guard import require_content_type
from server.http.keys import CONFIG, LANE, REGISTRY, RESTORE_RATE, STORE
from server.http.rest import LABEL_PREFIX, caller_of, grant_for, int_query, resolve_at

MAX_VERSION_NAME = 100
VERSIONS_PAGE = 100
MAX_VERSIONS_PAGE = 1000
MAX_JSON_BODY = 64 * 1024  # a restore or a version name is a few bytes


def _types(request: web.Request) -> dict[str, str] | None:
    raw = request.query.get("types")
    if not raw:
        return None
    types = {}
    for part in raw.split(","):
        name, sep, kind = part.partition(":")
        if not sep or not name:
            raise ProtocolError(0, f"types: {part!r} is not ROOT:TYPE")
        types[name] = kind
    return types


def _checked(func: Any, *args: Any) -> Any:
    """Run an engine view function; a bad `types` value is the caller's 400, and so is a
    room nested past the stack (the JSON view caps depth; this catches any other walk)."""
    try:
        return func(*args)
    except ValueError as exc:
        raise ProtocolError(0, str(exc)) from exc
    except RecursionError as exc:
        raise ProtocolError(0, "the room nests too deep to walk") from exc


def json_text(state: bytes, types: dict[str, str] | None, whole: bool = False) -> bytes:
    """The JSON view, encoded in the worker (a big room's JSON is seconds of encoding
    that would otherwise run on the event loop). `whole`: as for `to_json`."""
    return json.dumps(_checked(partial(to_json, whole=whole), state, types)).encode()


def json_text_at(updates: list[bytes], types: dict[str, str] | None) -> bytes:
    """`json_text` of the state `updates` make (`RoomStore.updates_at`), merged in the
    worker: merging walks every update in Python, which in a thread of the server would
    hold the interpreter's lock, and so the event loop, for as long. A merged state that
    integrated whole is not walked a second time to load it (as `restore_at`)."""
    if len(updates) > 1:
        state, whole = rebuild_whole(updates)
        return json_text(state, types, whole)
    return json_text(_merged(updates), types)


def restore_at(
    current: bytes,
    target: list[bytes],
    types: dict[str, str] | None,
    snapshot_whole: bool = False,
) -> tuple[bytes, UpdateShape]:
    """`restore_update` to the state `target` makes, merged in the worker (as above),
    with its `scan_update`: the room then applies it without walking its structs on the
    event loop (a big restore's walk held every room for tens of milliseconds).

    Each stored update is walked once: merging walks them (all but a first snapshot
    stored whole, `snapshot_whole`, which a room's load does not walk either), and a
    merged state that integrated whole is not walked again by the restore.
    """
    if snapshot_whole and len(target) == 1:
        state, whole = target[0], True
    elif len(target) > 1:
        state, whole = rebuild_whole(target, whole_snapshot=snapshot_whole)
    else:
        state, whole = _merged(target), False
    restore = partial(restore_update, target_whole=whole)
    update = bytes(_checked(restore, current, state, types))
    return update, scan_update(update)


def _merged(updates: list[bytes]) -> bytes:
    if not updates:
        return EMPTY_UPDATE
    return updates[0] if len(updates) == 1 else rebuild(updates)


def _caller_gone(request: web.Request) -> Callable[[], bool]:
    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return gone


async def json_view(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    grant = await grant_for(request, room)
    lane = request.app[LANE]
    with lane.admit_caller(caller_of(request, grant)):  # cached or not: may be Busy
        return await _json_view_admitted(request, room)


async def _json_view_admitted(request: web.Request, room: str) -> web.Response:
    store = request.app[STORE]
    info = await store.require(room)
    at = await resolve_at(request, room, info.last_seq)
    types = _types(request)
    key = (room, info.created, at, tuple(sorted(types.items())) if types else None)
    lane = request.app[LANE]
    doc = lane.cache.get(key)
    if doc is None:
        with lane.admit_room(room):
            updates = await store.updates_at(room, at)
            try:
                doc = await lane.execute(json_text_at, updates, types, gone=_caller_gone(request))
            except CallerGone:
                return web.Response(status=503)  # nobody is left to read it
        lane.cache.put(key, doc)
    head = json.dumps({"room": room, "seq": at}).encode()[:-1]
    return web.Response(body=head + b', "doc": ' + doc + b"}", content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    require_content_type(request, "application/json")
    raw = await request.read()
    if len(raw) > MAX_JSON_BODY:
        raise ProtocolError(0, f"JSON body of {len(raw)} bytes; at most {MAX_JSON_BODY}")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(0, f"body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError(0, "body is not JSON this server reads: nested too deep") from exc
    if not isinstance(body, dict):
        raise ProtocolError(0, "body must be a JSON object")
    return body


def _seq_field(body: dict[str, Any], last_seq: int) -> int:
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ProtocolError(0, '"seq" must be an integer')
    if seq < 0 or seq > last_seq:
        raise ProtocolError(0, f'"seq" must be between 0 and the last seq {last_seq}')
    return seq


async def restore(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    grant = await grant_for(request, room, write=True)
    store = request.app[STORE]
    info = await store.require(room)
    target_seq = _seq_field(await _json_body(request), info.last_seq)
    types = _types(request)
    rate = request.app[RESTORE_RATE]
    await rate.admit(room)  # may pause, or be Busy: 503 (server/restore_rate.py)
    lane = request.app[LANE]
    with lane.admit(caller_of(request, grant), room):
        try:
            target, whole = await store.updates_and_whole_at(room, target_seq)
        except CorruptRecord as exc:
            raise Conflict(f"cannot restore seq {target_seq}: the log was trimmed ({exc})") from exc
        current = (await request.app[REGISTRY].acquire(room)).doc.encode_state()
        try:
            update, shape = await lane.execute(
                restore_at, current, target, types, whole, gone=_caller_gone(request)
            )
        except CallerGone:
            return web.Response(status=503)
    actor = await request.app[REGISTRY].acquire(room)  # it may have unloaded meanwhile
    if update == EMPTY_UPDATE:
        return web.json_response(
            {"seq": actor.last_seq, "restore_of": target_seq, "changed": False}
        )
    rate.charge(room, len(update))  # a restore that changes nothing costs nothing
    seq = await actor.post_update(
        update, grant.user, restore_of=target_seq, server=True, shape=shape
    )
    return web.json_response({"seq": seq, "restore_of": target_seq, "changed": True})


def _version_name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProtocolError(0, '"name" must be a non-empty string')
    if len(name) > MAX_VERSION_NAME:
        raise ProtocolError(0, f'"name" is longer than {MAX_VERSION_NAME} characters')
    if name.isdigit():
        raise ProtocolError(0, '"name" may not be all digits (it would read as a seq)')
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ProtocolError(0, '"name" contains control characters')
    return name


def _label(docs: DocStore, room: str, name: str, seq: int, limit: int) -> str:
    """Name `seq` unless the name is taken or the room has `limit` names already: run on
    the store's one writer thread, so this process's counts and writes never interleave
    (with several processes on Redis, a race may pass the limit by one per process)."""
    if docs.get_meta(room, LABEL_PREFIX + name) is not None:
        return "taken"
    if len(docs.scan_meta(room, LABEL_PREFIX)) >= limit:
        return "full"
    return (
        "named"
        if docs.set_meta(room, LABEL_PREFIX + name, str(seq).encode(), only_new=True)
        else "taken"
    )


async def add_version(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    await grant_for(request, room, write=True)
    store = request.app[STORE]
    name = _version_name(await _json_body(request))
    info = await store.require(room)
    limit = request.app[CONFIG].limits.max_versions
    outcome = await store.write(partial(_label, store.docs, room, name, info.last_seq, limit))
    if outcome == "taken":
        raise Conflict(f"room {room!r} already has a version named {name!r}")
    if outcome == "full":
        raise Conflict(f"room {room!r} has {limit} versions, the most a room may name")
    return web.json_response({"name": name, "seq": info.last_seq})


async def list_versions(request: web.Request) -> web.Response:
    """The room's named versions in (seq, name) order, `limit` a page (default 100);
    `next` names the last one listed when more follow (pass it as `after`)."""
    room = request.match_info["room"]
    await grant_for(request, room)
    store = request.app[STORE]
    await store.require(room)
    limit = max(1, min(int_query(request, "limit", VERSIONS_PAGE), MAX_VERSIONS_PAGE))
    labels = await store.read(store.docs.scan_meta, room, LABEL_PREFIX)
    versions = sorted(
        ({"name": key[len(LABEL_PREFIX) :], "seq": int(value)} for key, value in labels),
        key=lambda v: (v["seq"], v["name"]),
    )
    after = request.query.get("after")
    if after is not None:
        keys = [(v["seq"], v["name"]) for v in versions]
        marks = [k for k in keys if k[1] == after]
        if not marks:
            raise RoomNotFound(f"room {room!r} has no version named {after!r}")
        versions = versions[bisect_right(keys, marks[0]) :]
    page = versions[:limit]
    body: dict[str, Any] = {"room": room, "versions": page}
    if len(versions) > limit:
        body["next"] = page[-1]["name"]
    return web.json_response(body)


def add_version_routes(app: web.Application) -> None:
    app.router.add_get("/v1/rooms/{room}/json", json_view)
    app.router.add_post("/v1/rooms/{room}/restore", restore)
    app.router.add_post("/v1/rooms/{room}/versions", add_version)
    app.router.add_get("/v1/rooms/{room}/versions", list_versions)

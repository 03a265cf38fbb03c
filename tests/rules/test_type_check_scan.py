"""The `type` rule judged from the scan the update already had (`UpdateShape.refs`) gives
exactly the verdict of the general walk (engine/rules/types.py), so a keystroke into a
text or a message appended to an array root is not walked a second time.

The verdict is the refusal's reason, or whether the update holds characters it does not
place. Updates come from replicas that write the same roots as texts, arrays, maps and
xml fragments (one replica, never synced, writes them as whatever it likes), merged runs
of them, and damaged copies; rule sets and the room's clocks are random."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, merge_updates

from engine.errors import ProtocolError, UpdateRejected
from engine.protocol import Update
from engine.rules.model import load_rules
from engine.rules.types import check_types
from engine.update_scan import StructHead, iter_structs, scan_update
from engine.update_shape import UpdateShape
from harness.wire import connect
from server import Config
from server.auth import issue_token
from tests.engine.helpers import recording_doc
from tests.rules.in_process import served
from tests.rules.rooms import one_update

ROOTS = ("t", "messages", "m", "x")
KINDS = ("text", "array", "map", "xml")
SECRET = "type-scan-secret-" + "0123456789abcdef" * 4
CHAT_RULES = load_rules(Path(__file__).resolve().parents[2] / "examples" / "chat-rules.toml")

Step = tuple[int, str, str, int, str]  # peer, root, op, position seed, value


def verdict(
    update: bytes, roots: dict[str, str], clocks: dict[int, int], *, scanned: bool
) -> str | bool:
    """What `check_types` says: the refusal's reason, or whether characters are loose;
    `scanned`: given the refs of the update's scan (when it scans), else walking it."""
    refs = None
    if scanned:
        try:
            refs = scan_update(update).refs
        except ProtocolError:
            pass
    try:
        return check_types(update, roots, clocks, refs)
    except UpdateRejected as exc:
        return str(exc)


def _edit(doc: Doc[Any], root: str, kind: str, op: str, seed: int, value: str) -> None:
    """One edit of `root` seen as a `kind`, if that kind has the op."""
    if kind == "text":
        text = doc.get(root, type=Text)
        if op == "insert":
            text.insert(seed % (len(text) + 1), value)
        elif op == "delete" and len(text):
            del text[seed % len(text)]
        elif op == "format" and len(text):
            text.format(0, 1, {"bold": True})
        elif op == "embed":
            text.insert_embed(seed % (len(text) + 1), {"image": value})
    elif kind == "array":
        array = doc.get(root, type=Array)
        if op == "insert":
            array.insert(seed % (len(array) + 1), value)
        elif op == "delete" and len(array):
            del array[seed % len(array)]
        else:  # a chat message, with its reactions
            message: Map[Any] = Map({"user": value, "text": value})
            array.append(message)
            message["reactions"] = Map()
    elif kind == "map":
        entries = doc.get(root, type=Map)
        if op == "delete" and value in entries:
            del entries[value]
        else:
            entries[value] = Map({"k": seed}) if op == "embed" else seed
    else:
        fragment = doc.get(root, type=XmlFragment)
        fragment.children.append(XmlText(value) if op == "insert" else XmlElement("p"))


def updates_of(script: list[Step], ids: list[int], seen_as: dict[str, str]) -> list[bytes]:
    """Peers 0 and 1 see every root as `seen_as` says and sync every few steps; peer 2
    writes each root as the kind its step names and never syncs. Every update, then
    merged runs of three."""
    peers = [recording_doc(client_id=client) for client in ids]
    made: list[bytes] = []
    rogue: dict[str, str] = {}  # a Doc keeps one type per root: peer 2 keeps its first
    for number, (who, root, op, seed, value) in enumerate(script):
        doc, updates = peers[who]
        before = len(updates)
        kind = seen_as[root] if who < 2 else rogue.setdefault(root, KINDS[seed % len(KINDS)])
        try:
            _edit(doc, root, kind, op, seed, value)
        except BaseException as exc:  # yrs panics on some edits next to embeds and formats
            if type(exc).__name__ != "PanicException":
                raise
            break
        made += updates[before:]
        if number % 3 == 2:
            for one, two in ((0, 1), (1, 0)):
                peers[two][0].apply_update(peers[one][0].get_update(peers[two][0].get_state()))
    merged = [bytes(merge_updates(*made[i : i + 3])) for i in range(0, len(made), 3)]
    return made + merged


steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(ROOTS),
        st.sampled_from(["insert", "insert", "insert", "delete", "format", "embed", "message"]),
        st.integers(0, 1000),
        st.text(alphabet="abx", min_size=1, max_size=3),  # yrs panics near multi-byte chars
    ),
    min_size=1,
    max_size=20,
)
typed = st.dictionaries(st.sampled_from(ROOTS), st.sampled_from(KINDS), max_size=4)
seen = st.fixed_dictionaries(
    {root: st.sampled_from(("text", "text", "array", "map")) for root in ROOTS}
)
client_ids = st.lists(st.integers(1, 2**53 - 1), min_size=3, max_size=3, unique=True)


def _clocks(data: st.DataObject, update: bytes) -> dict[int, int]:
    """A room's state: nothing, or a random clock per client the update names."""
    try:
        shape = scan_update(update)
    except ProtocolError:
        return {}
    clients = {*shape.ranges, *shape.deps, *shape.deleted}
    top = max((end for _, end in shape.ranges.values()), default=0) + 2
    return {
        client: data.draw(st.integers(0, top))
        for client in sorted(clients)
        if data.draw(st.booleans())
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, client_ids, seen, typed, st.data())
def test_the_scan_gives_the_type_check_the_walks_verdict(
    script: list[Step],
    ids: list[int],
    seen_as: dict[str, str],
    roots: dict[str, str],
    data: st.DataObject,
) -> None:
    updates = updates_of(script, ids, seen_as)
    assume(updates)
    damaged = data.draw(st.sampled_from(updates))
    at = data.draw(st.integers(0, len(damaged) - 1))
    byte = data.draw(st.integers(0, 255))
    updates += [damaged[:at], damaged[:at] + bytes([byte]) + damaged[at + 1 :]]
    for update in updates:
        for clocks in ({}, _clocks(data, update)):
            walked = verdict(update, roots, clocks, scanned=False)
            assert verdict(update, roots, clocks, scanned=True) == walked, (update.hex(), roots)


def _type_ab(at: int, doc: Doc[Any]) -> None:
    doc.get("t", type=Text).insert(at, "ab")


def _no_walk(update: bytes, **_: Any) -> list[StructHead]:
    raise AssertionError("walked the update again")


def test_keystrokes_and_appended_messages_are_judged_without_a_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc: Doc[Any] = Doc(client_id=7)
    chat = {"messages": "array"}
    first = one_update(doc, lambda d: d.get("messages", type=Array).append(Map({"user": "a"})))
    typed_first = one_update(doc, lambda d: d.get("t", type=Text).insert(0, "hello"))
    keystroke = one_update(doc, lambda d: d.get("t", type=Text).insert(2, "ab"))
    appended = one_update(doc, lambda d: d.get("messages", type=Array).append(Map({"user": "b"})))
    assert check_types(first, chat, {}, scan_update(first).refs) is False  # names the root
    monkeypatch.setattr("engine.rules.types.iter_structs", _no_walk)
    before, after = {7: 7}, {7: 9}  # the room without, and with, the keystroke
    assert check_types(typed_first, chat, {}, scan_update(typed_first).refs) is False
    assert check_types(keystroke, chat, before, scan_update(keystroke).refs) is True  # loose
    assert check_types(keystroke, chat, after, scan_update(keystroke).refs) is False  # a replay
    assert check_types(appended, chat, after, scan_update(appended).refs) is False
    with pytest.raises(AssertionError, match="walked"):
        check_types(first, chat, {}, scan_update(first).refs)


def test_an_update_naming_a_typed_root_as_another_type_is_still_refused() -> None:
    doc: Doc[Any] = Doc(client_id=9)
    as_text = one_update(doc, lambda d: d.get("messages", type=Text).insert(0, "x"))
    shape = scan_update(as_text)
    assert shape.refs is not None and shape.refs.named == {"messages"}
    with pytest.raises(UpdateRejected, match="rule: messages must stay an array"):
        check_types(as_text, {"messages": "array"}, {}, shape.refs)


@pytest.mark.parametrize("where", ["root", "key"])
def test_a_name_that_is_not_utf8_leaves_the_verdict_to_the_walk(where: str) -> None:
    """`iter_structs` rejects a root name or key that is not UTF-8 (the update then passes
    the check and fails to apply): the scan gives no refs, so the check walks and says
    the same, whatever the structs after it do."""
    doc: Doc[Any] = Doc(client_id=3)
    if where == "root":
        update = one_update(doc, lambda d: d.get("zz", type=Text).insert(0, "x"))
    else:
        update = one_update(doc, lambda d: d.get("m", type=Map).update({"zz": 1, "y": 2}))
    broken = update.replace(b"\x02zz", b"\x02\xff\xfe")
    assert broken != update and scan_update(broken).refs is None
    for roots in ({"t": "array"}, {"m": "text"}, {"zz": "map"}):
        walked = verdict(broken, roots, {}, scanned=False)
        assert verdict(broken, roots, {}, scanned=True) == walked


shapes = st.builds(
    UpdateShape,
    st.dictionaries(st.integers(0, 4), st.tuples(st.integers(0, 9), st.integers(0, 9))),
    st.dictionaries(st.integers(0, 4), st.integers(0, 9)),
    st.dictionaries(st.integers(0, 4), st.integers(0, 9)),
    st.booleans(),
    st.dictionaries(
        st.integers(0, 4),
        st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1).map(tuple),
    ),
)


@settings(max_examples=100, deadline=None)
@given(shapes, st.dictionaries(st.integers(0, 5), st.integers(0, 10)))
def test_integrates_after_answers_as_needs_says(shape: UpdateShape, clocks: dict[int, int]) -> None:
    """`require_whole`'s question, asked of every update in a room with rules, answered
    without building `needs`: the same answer."""
    expected = all(clocks.get(client, 0) >= clock for client, clock in shape.needs().items())
    assert shape.integrates_after(clocks) is expected


async def test_a_rules_room_walks_only_updates_naming_a_typed_root(
    store_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the real actor (its guard's scan handed to the rules), on LMDB and Redis:
    ann's first message is walked (it names the typed root `messages`); her first
    characters (naming `t`, which no rule types), her keystrokes and her next message
    are not, and everything is stored."""
    walked: list[bytes] = []
    walk = iter_structs

    def counted(update: bytes, **options: Any) -> Any:
        walked.append(update)
        return walk(update, **options)

    monkeypatch.setattr("engine.rules.types.iter_structs", counted)
    config = Config(auth_secret=SECRET, **{"data_dir": tmp_path, **store_config})
    async with served(config, CHAT_RULES) as (url, _rooms):
        token = issue_token(SECRET, "typing", user="ann")
        async with connect(url, "typing", token=token, ack=True) as ann:
            await ann.sync()
            doc, text = ann.doc, ann.doc.get("t", type=Text)
            messages = doc.get("messages", type=Array)
            sent = [
                one_update(doc, lambda _: messages.append(Map({"user": "ann", "text": "hi"}))),
                one_update(doc, lambda _: text.insert(0, "hello")),
            ]
            sent += [one_update(doc, partial(_type_ab, at % 5)) for at in range(10)]
            sent.append(one_update(doc, lambda _: messages.append(Map({"user": "ann"}))))
            for update in sent:
                await ann.send(Update(update))
            await ann.wait_saved(len(sent))
            assert walked == sent[:1]
            assert ann.close_code is None
        async with connect(url, "typing", token=issue_token(SECRET, "typing", user="bo")) as bo:
            await bo.sync()
            assert len(bo.doc.get("t", type=Text)) == len(text)
            assert [m["user"] for m in bo.doc.get("messages", type=Array).to_py()] == ["ann"] * 2

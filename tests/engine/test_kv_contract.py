"""One contract for every KV: the in-memory fake and LMDB must behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.storage import KV, LmdbKV, MemoryKV


@pytest.fixture(params=["memory", "lmdb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else LmdbKV(tmp_path / "kv")
    yield store
    store.close()


def test_get_returns_what_write_put(kv: KV) -> None:
    kv.write([("log", b"a", b"1"), ("meta", b"a", b"2")])
    assert kv.get("log", b"a") == b"1"
    assert kv.get("meta", b"a") == b"2"
    assert kv.get("snapshots", b"a") is None


def test_scan_is_sorted_and_bounded_by_prefix(kv: KV) -> None:
    kv.write([("log", key, key) for key in (b"doc10", b"doc1\x00b", b"doc1\x00a", b"doc2")])
    assert [k for k, _ in kv.scan("log", b"doc1\x00")] == [b"doc1\x00a", b"doc1\x00b"]
    assert [k for k, _ in kv.scan("log", b"doc1")] == [b"doc1\x00a", b"doc1\x00b", b"doc10"]


def test_scan_from_start_and_reverse(kv: KV) -> None:
    keys = [bytes([1, i]) for i in range(10)] + [bytes([2, 0]), bytes([0, 9])]
    kv.write([("log", k, k) for k in keys])
    assert [k[1] for k, _ in kv.scan("log", b"\x01", start=b"\x01\x07")] == [7, 8, 9]
    assert [k[1] for k, _ in kv.scan("log", b"\x01", reverse=True, limit=3)] == [9, 8, 7]
    assert [k[1] for k, _ in kv.scan("log", b"\x01", start=b"\x01\x04", reverse=True)] == [
        4,
        3,
        2,
        1,
        0,
    ]
    assert [
        k[1] for k, _ in kv.scan("log", b"\x01", start=b"\x01\x04\x00", reverse=True, limit=1)
    ] == [4]
    assert kv.scan("log", b"\x03", reverse=True) == []
    assert kv.scan("log", b"\x00\x00", reverse=True) == []


def test_reverse_scan_of_a_prefix_at_the_end_of_the_key_space(kv: KV) -> None:
    kv.write([("log", b"\xff\xff\x01", b"x"), ("log", b"\xff\xfe", b"y")])
    assert [k for k, _ in kv.scan("log", b"\xff\xff", reverse=True)] == [b"\xff\xff\x01"]


def test_write_is_one_batch_of_puts_and_deletes(kv: KV) -> None:
    kv.write([("log", b"a", b"1"), ("log", b"b", b"2")])
    kv.write([("log", b"c", b"3")], [("log", b"a")])
    assert [k for k, _ in kv.scan("log", b"")] == [b"b", b"c"]


def test_a_failed_batch_changes_nothing(kv: KV) -> None:
    kv.write([("log", b"a", b"1")])
    with pytest.raises(KeyError):
        kv.write([("log", b"b", b"2"), ("nope", b"c", b"3")], [("log", b"a")])
    assert kv.scan("log", b"") == [(b"a", b"1")]


def test_lmdb_data_survives_close_and_reopen(tmp_path: Path) -> None:
    first = LmdbKV(tmp_path / "kv")
    first.write([("log", b"k", b"v")])
    first.close()
    second = LmdbKV(tmp_path / "kv")
    assert second.get("log", b"k") == b"v"
    second.close()


def test_lmdb_map_grows_when_full(tmp_path: Path) -> None:
    kv = LmdbKV(tmp_path / "kv", map_size=64 * 1024)
    big = b"x" * 50_000
    for i in range(20):
        kv.write([("log", i.to_bytes(4, "big"), big)])
    assert len(kv.scan("log", b"")) == 20
    assert kv.stats()["map_size"] > 64 * 1024
    kv.close()

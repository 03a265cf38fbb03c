"""The abuse harness, short form (the long form and its thresholds are in
benchmarks/reliability/abuse.py): views, restores, pages and streams attacked at once
against a real server. No timing asserts: the compute flood is refused with 503 +
Retry-After, one token gets no more than its streams, every stream ends at its token's
expiry, and the probe room keeps answering."""

from __future__ import annotations

from harness.abuse import SECRET, AbuseSizes, run_abuse
from tests.conftest import StartServer


async def test_attacks_on_the_rest_surface_are_bounded(server_factory: StartServer) -> None:
    server = server_factory("--auth-secret", SECRET)
    sizes = AbuseSizes(probes=20, heavy_maps=300, heavy_seqs=5, compute_callers=8,
                       bulk_entries=4, bulk_bytes=200_000, page_readers=1, stalled=2,
                       streams=40, expiring=2, ttl=2)  # fmt: skip
    report = await run_abuse(server, sizes, control_busy=1)
    assert len(report.attacked.samples) == sizes.probes  # every probe arrived
    assert report.control is not None and len(report.control.samples) == sizes.probes
    assert any(line.startswith("RESULT abuse probe control busy=1 ") for line in report.lines())
    assert report.statuses["compute"][503] > 0
    assert set(report.statuses["compute"]) <= {200, 503}
    assert report.statuses["streams"] == {200: 32, 503: 8}  # Limits.streams_per_caller
    assert report.expired == sizes.expiring
    assert all(seconds < sizes.ttl + 5 for seconds in report.expired_seconds)
    assert 200 in report.statuses["pages"]
    assert set(report.statuses["pages"]) <= {200, 503}  # Limits.page_reads_per_caller

"""Load and soak, short forms (the long forms and their numbers are in
benchmarks/reliability): many connections, connect/disconnect churn on a loaded room, a
client that stops reading, a client that floods. No timing asserts: everything must
arrive, nothing may be left behind."""

from __future__ import annotations

from harness.churn import churn
from harness.connections import hold_connections
from harness.isolation import flood, slow_consumer
from tests.conftest import ServerProcess, StartServer


async def test_hundreds_of_connections_open_sync_and_leave_nothing(
    server_factory: StartServer,
) -> None:
    server = server_factory("--idle-unload", "0.2")
    report = await hold_connections(server, 300, rooms=10)
    assert report.failures == []
    assert report.synced == 300  # each got the server's greeting and answered our SyncStep1
    assert report.server_open["connections"] == 300
    assert (report.server_after["connections"], report.server_after["rooms_loaded"]) == (0, 0)
    assert server.stop() == 0


async def test_churn_on_a_loaded_room_leaves_no_connection_presence_or_lost_edit(
    server: ServerProcess,
) -> None:
    report = await churn(server, 300)
    assert report.leftovers == []
    # every edit was relayed to the resident observer and is in the stored room
    assert (report.edits_seen, report.edits_stored) == (30, 30)


async def test_a_client_that_stops_reading_does_not_hold_back_its_room(
    server_factory: StartServer,
) -> None:
    server = server_factory("--send-buffer-bytes", "200000")
    times, code = await slow_consumer(
        server, updates=80, size=150_000, sleeper=True, close_deadline=30
    )
    assert len(times.samples) == 80  # every update reached the reader that reads
    assert code == 4408  # 12 MB for a client that reads nothing: cut off, not queued


async def test_a_flooding_client_is_throttled_and_other_rooms_keep_flowing(
    server_factory: StartServer,
) -> None:
    server = server_factory("--rate", "200")
    result = await flood(server, flood_updates=1000, probes=30)
    assert len(result.times.samples) == 30
    assert result.saved == 1000  # throttled by delay, never dropped

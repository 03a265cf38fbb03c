"""How the numbers are made; printed into every report."""

TEXT = """## How it is measured

- **Clients:** real Yjs documents (yjs 13.6, y-protocols, lib0, ws) in one Node
  process (T: one per 50 rooms), speaking the plain y-websocket protocol (Hocuspocus: the same
  messages in its framing, document name first, an empty auth token first).
  Every server is driven by the same client code (`benchmarks/node`).
- **Edits:** each edit inserts 2 characters at a seeded random position in one
  shared `Y.Text`. Arrival at every other client is read from the receiving
  transaction's state vector, so every (edit, receiver) pair is accounted for:
  **latency** = send to apply at the receiver (same clock, same process);
  **lost** = pairs never delivered within the deadline. Every edit run also
  checks that all clients end with the same text and that a late joiner gets
  exactly that text; any loss, divergence or unexpected close marks the run
  FAILED instead of giving a number.
- **Full speed** is closed loop: each writer keeps at most 4 edits (8 in E)
  not yet seen by its observer (the next client; in E a dedicated reader), so
  the server is saturated without unbounded queues. updates/s = edits /
  (first send to last delivery); deliveries/s counts (edit, receiver) pairs.
  Each run is bounded by an edit count and a time window.
- **Server CPU** = user+sys ticks of the server process (`/proc/PID/stat`) over
  the run, divided by the edits. The load generator shares the machine and
  its own CPU time is in the JSON lines (`loadgen_cpu_s`).
- **C cold sync:** one writer logs N single edits, a reader keeps the room
  open (the peers drop a room when its last client leaves), then a new client
  joins: time from opening the socket to applying the server's SyncStep2, and
  bytes received by then. Then the server restarts and a client joins again.
- **D memory:** one client per room, 20 edits, a round trip to make sure the
  server applied them; RSS with every client connected, then after all leave
  and the idle period passes (ours runs with `--idle-unload` 2 s). "content
  kept" = a client rejoining the last room after the idle period finds its text.
- **E ingest:** ours is connected with `?ack=1` and the run ends only when every
  writer's updates are acknowledged as durably committed (fsync); the peers
  only apply in memory, so their number is the upper bound of an in-memory
  relay, not a durable ingest rate.
- **F presence:** awareness states, rooms of 10. "1:1 relay would deliver" =
  sends x 9; a server that coalesces (ours flushes presence every 30 ms) or
  echoes to the sender (Hocuspocus, pycrdt-websocket) delivers a different
  count; "final states seen" checks every client ends with every peer's last state.
- **T typists:** open loop at typing pace: every client inserts one character
  5 times/s (each gap 200 ms x U(0.5, 1.5)) into its room's text, R rooms of 3,
  R stepped 25, 50, 100, 200, 400 (each step on a restarted server, 10 s, after
  2 s of typing that is not measured); then one busy room, 10 clients x 20
  edits/s (also after 2 s unmeasured). The rooms of a step are dealt out to one
  load generator process per 50 rooms (a room's clients share a process, so
  latency stays on one clock); the processes start typing together and the
  server's CPU is read over that common window. Server CPU % is of one core; the
  busiest load process's own CPU (% of one core) and how late edits left against
  their schedule are recorded, and a step where the client was the bottleneck
  is marked. Each result also records why edits left late: the load processes'
  run-queue wait (% of the window runnable but without a core, from
  /proc/self/schedstat), their event-loop delay p99 and their GC pauses (the
  worst process's). The server's CPU is its own process's; the load processes' is not
  in it (nothing is pinned or reniced: every server gets the same clients).
- **BIG big room:** see the section's note; the peer here is y-websocket with its
  own LevelDB persistence (`YPERSISTENCE`), since a server that keeps nothing has
  no cold room to load.
- **Event loop:** ours runs on uvloop when it is installed (it is, in `.venv`);
  pycrdt-websocket under uvicorn runs on asyncio's loop unless uvloop is
  installed and used. The suite runs both Python servers on the same loop
  (`--loop uvloop`, the default, or `--loop asyncio`) and records which.
- **Load:** the machine is shared. Before each run the harness waits (up to
  `--quiet-wait` s) for other work to use < 0.5 cores, and records the cores
  other processes used during the run (`other_busy_cores`).
"""

// The workloads. Each takes a config object from the Python harness and returns a
// plain result object; `failures` lists anything that makes the run invalid
// (lost updates, divergence, unexpected closes), which the harness reports as a
// failure rather than a number.
import { SimClient, connectAll } from './client.mjs'
import { EditTracker } from './tracker.mjs'
import { Samples, CpuMeter, LoopMeter, rng, waitUntil, sleep, rssMiB } from './stats.mjs'
import { barrier, shardRooms } from './shards.mjs'

const EDIT = 'ab' // every edit inserts this small string

/** Build the websocket URL of a room for a server. */
export function roomUrl (server, room, params = {}) {
  const q = new URLSearchParams(params).toString()
  const base = server.flavor === 'hocuspocus' ? server.base : `${server.base}/${encodeURIComponent(room)}`
  return q ? `${base}?${q}` : base
}

function makeClients (server, room, n, params, awareness = false) {
  return Array.from({ length: n }, () =>
    new SimClient({ url: roomUrl(server, room, params), flavor: server.flavor, room, awareness }))
}

function closedBy (clients) {
  return clients.filter((c) => c.closeInfo !== null).map((c) => `${c.room}: ${c.closeInfo.code} ${c.closeInfo.reason}`)
}

/** A fresh client joins each room and must see exactly what the room's clients have. */
async function verifyRooms (server, trackers, failures, edit = EDIT) {
  for (const t of trackers) {
    const room = t.clients[0].room
    const [v] = makeClients(server, room, 1, {})
    await v.connect()
    const want = t.clients[0].text.toString()
    const got = v.text.toString()
    if (got !== want || got.length !== t.totalEdits() * edit.length) {
      failures.push(`${room}: late joiner has ${got.length} chars, clients ${want.length}, sent ${t.totalEdits() * edit.length}`)
    }
    v.close()
  }
}

/**
 * Rooms of clients that all edit one shared text. Closed loop (`window` edits of
 * each client may be unseen by its observer) or open loop (`rate` edits/s per client,
 * each gap drawn from rate x [1 - jitter, 1 + jitter] when `jitter` is set).
 * `editText` is what every edit inserts (default 2 characters).
 */
export async function edits (cfg) {
  const { server, clientsPerRoom, maxEdits, durationMs, seed } = cfg
  const window = cfg.window || 4
  const editText = cfg.editText || EDIT
  const writers = cfg.writersPerRoom ?? clientsPerRoom
  const params = cfg.params || {}
  const samples = new Samples(1 << 16)
  const roomClients = shardRooms(cfg).map((i) =>
    makeClients(server, `${cfg.roomPrefix}${i}`, clientsPerRoom, params))
  const all = roomClients.flat()
  await connectAll(all, 25, cfg.connectTimeoutMs || 30000)
  const trackers = roomClients.map((cs) => new EditTracker(cs, maxEdits, samples))
  const rand = rng(cfg.shard ? seed + cfg.shard.index : seed)
  if (cfg.rate && cfg.warmupMs) await warmUp(trackers, writers, cfg, rand, editText)
  const before = counts(trackers)
  await barrier(cfg, 'ready')
  const meter = new CpuMeter(server.pid, server.clkTck)
  meter.start()
  const loop = new LoopMeter()
  loop.start()
  const t0 = performance.now()
  const deadline = t0 + durationMs
  // In closed loop a writer's observer is the next client; with dedicated
  // observers (writers < clients) it is the last client of the room.
  const observer = (s) => (writers < clientsPerRoom ? clientsPerRoom - 1 : (s + 1) % clientsPerRoom)
  let lastSend = t0
  const lag = new Samples(1 << 12)
  if (cfg.rate) {
    await openLoop(trackers, writers, cfg.rate, maxEdits, deadline, rand, { jitter: cfg.jitter || 0, editText, lag })
    lastSend = performance.now()
  } else {
    const pump = (t, s) => {
      while (t.count[s] < maxEdits && t.pending(s, observer(s)) < window && performance.now() < deadline) {
        t.edit(s, editText, rand)
        lastSend = performance.now()
      }
    }
    for (const t of trackers) {
      t.onArrival = (s, r) => { if (r === observer(s)) pump(t, s) }
      for (let s = 0; s < writers; s++) pump(t, s)
    }
    // Writers stop when they reach maxEdits or the deadline; wait for that.
    await waitUntil(() => performance.now() >= deadline ||
      trackers.every((t) => t.count.slice(0, writers).every((c) => c >= maxEdits)), durationMs + 1000)
  }
  const convergeMs = cfg.convergeTimeoutMs || 60000
  const saved = () => !params.ack || all.every((c) => c.saved >= c.updatesSent)
  const converged = await waitUntil(() => trackers.every((t) => t.lost() === 0) && saved(), convergeMs)
  const tEnd = Math.max(...trackers.map((t) => t.lastArrival), lastSend)
  const cpu = meter.stop()
  const loopStats = loop.stop()
  await barrier(cfg, 'measured')
  const failures = []
  const lost = trackers.reduce((a, t) => a + t.lost(), 0)
  if (lost > 0) failures.push(`${lost} deliveries missing after ${convergeMs} ms`)
  if (!saved()) failures.push('not every update acknowledged as saved')
  if (!trackers.every((t) => t.sameText())) failures.push('clients diverged')
  failures.push(...closedBy(all).map((s) => `closed: ${s}`))
  if (failures.length === 0) await verifyRooms(server, trackers, failures, editText)
  const after = counts(trackers)
  const updates = after.updates - before.updates
  const deliveries = after.deliveries - before.deliveries
  const elapsed = (tEnd - t0) / 1000
  all.forEach((c) => c.close())
  const lagSummary = lag.summary()
  return {
    clients: all.length,
    updates,
    deliveries,
    expected_deliveries: after.expected - before.expected,
    lost,
    converged,
    elapsed_s: elapsed,
    updates_per_s: updates / elapsed,
    deliveries_per_s: deliveries / elapsed,
    converge_ms: Math.max(0, tEnd - lastSend),
    ...samples.summary(),
    ...cpu,
    server_cpu_us_per_update: (cpu.server_cpu_s * 1e6) / Math.max(1, updates),
    server_cpu_pct: (100 * cpu.server_cpu_s) / cpu.wall_s,
    loadgen_cpu_pct: (100 * cpu.loadgen_cpu_s) / cpu.wall_s,
    send_lag_p50_ms: lagSummary.p50_ms,
    send_lag_p99_ms: lagSummary.p99_ms,
    ...loopStats,
    ...(cfg.shard ? { latency_samples_ms: samples.values(), send_lag_samples_ms: lag.values() } : {}),
    failures
  }
}

/** Edits made, deliveries seen and deliveries due so far, over all rooms. */
function counts (trackers) {
  return {
    updates: trackers.reduce((a, t) => a + t.totalEdits(), 0),
    deliveries: trackers.reduce((a, t) => a + t.deliveries, 0),
    expected: trackers.reduce((a, t) => a + t.expectedDeliveries(), 0)
  }
}

/**
 * Type for `cfg.warmupMs` before the measured window, measuring nothing. In its first
 * second every load process compiles its hot code (V8's optimizing compiler runs on
 * threads of its own) and the server meets its first edits, all at once: on two quiet
 * cores that burst kept the load processes 50-115 ms from a core, 0.6-0.85 s into the
 * window, which was the whole of the 100-room step's send lag p99 (44-90 ms).
 */
async function warmUp (trackers, writers, cfg, rand, editText) {
  const measured = trackers.map((t) => t.samples)
  const discard = new Samples(1 << 12)
  for (const t of trackers) t.samples = discard
  const until = performance.now() + cfg.warmupMs
  await openLoop(trackers, writers, cfg.rate, cfg.maxEdits, until, rand, { jitter: cfg.jitter || 0, editText })
  await waitUntil(() => trackers.every((t) => t.lost() === 0), cfg.convergeTimeoutMs || 60000)
  trackers.forEach((t, i) => { t.samples = measured[i] })
}

/**
 * Each writer edits at `rate`/s on its own schedule until the deadline. With
 * `jitter` j every gap is interval x U(1 - j, 1 + j); `lag` collects how late each
 * edit left against its schedule (a busy load generator shows up here).
 */
async function openLoop (trackers, writers, rate, maxEdits, deadline, rand, opts = {}) {
  const interval = 1000 / rate
  const jitter = opts.jitter || 0
  const editText = opts.editText || EDIT
  const jobs = []
  for (const t of trackers) {
    for (let s = 0; s < writers; s++) {
      let due = performance.now() + rand() * interval
      jobs.push((async () => {
        for (let k = t.count[s]; k < maxEdits; k++) {
          if (due >= deadline) break
          const wait = due - performance.now()
          if (wait > 0) await sleep(wait)
          if (opts.lag) opts.lag.push(performance.now() - due)
          t.edit(s, editText, rand)
          due += jitter ? interval * (1 + jitter * (2 * rand() - 1)) : interval
        }
      })())
    }
  }
  await Promise.all(jobs)
}

/**
 * Cold sync: one writer logs `updates` single edits (observer-paced), then a new
 * client joins while the observer stays connected (peers without persistence
 * drop a room as soon as its last client leaves).
 */
export async function coldsync (cfg) {
  const keeper = makeClients(cfg.server, `${cfg.roomPrefix}0`, 1, {})[0]
  await keeper.connect()
  const fill = await edits({ ...cfg, rooms: 1, clientsPerRoom: 2, writersPerRoom: 1, maxEdits: cfg.updates, durationMs: cfg.durationMs || 600000, window: 64 })
  const chars = fill.updates * EDIT.length
  const joined = fill.failures.length ? { failures: [] } : await join({ ...cfg, expectChars: chars })
  keeper.close()
  return {
    ...joined,
    populate_s: fill.elapsed_s,
    populate_updates_per_s: fill.updates_per_s,
    updates: fill.updates,
    expect_chars: chars,
    failures: [...fill.failures, ...joined.failures]
  }
}

/** Cold sync, part 2: a new client joins; time and bytes until synced. */
export async function join (cfg) {
  const [c] = makeClients(cfg.server, `${cfg.roomPrefix}0`, 1, {})
  const meter = new CpuMeter(cfg.server.pid, cfg.server.clkTck)
  meter.start()
  await c.connect(cfg.connectTimeoutMs || 120000)
  const contentAt = await untilChars(c, cfg.expectChars, cfg.contentTimeoutMs || 60000)
  const cpu = meter.stop()
  const result = {
    sync_ms: c.syncedAt - c.t0,
    content_ms: contentAt - c.t0,
    bytes_received: c.bytesAtSync,
    chars: c.text.length,
    ...cpu,
    failures: []
  }
  if (cfg.expectChars !== undefined && c.text.length !== cfg.expectChars) {
    result.failures.push(`joined with ${c.text.length} chars, expected ${cfg.expectChars}`)
  }
  c.close()
  return result
}

/**
 * When the joined client's text has `expect` chars (now, if it had them at sync): a
 * server may answer the sync before it has loaded a stored room and send the content
 * after, so "joined" means "has the room". Gives up at the deadline (the caller's
 * length check then reports it).
 */
function untilChars (c, expect, timeoutMs) {
  if (expect === undefined || c.text.length >= expect) return Promise.resolve(c.syncedAt)
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); c.doc.off('update', check); resolve(performance.now()) }
    const check = () => { if (c.text.length >= expect) done() }
    const timer = setTimeout(done, timeoutMs)
    c.doc.on('update', check)
  })
}

/** RSS with `rooms` rooms loaded (one client each, a few edits), then after all leave. */
export async function memory (cfg) {
  const { server, rooms, editsPerRoom, idleWaitMs, seed } = cfg
  const pid = server.pid
  const rssBefore = rssMiB(pid)
  const clients = Array.from({ length: rooms }, (_, i) => makeClients(server, `${cfg.roomPrefix}${i}`, 1, {})[0])
  const rand = rng(seed)
  const meter = new CpuMeter(pid, server.clkTck)
  meter.start()
  let next = 0
  const worker = async () => {
    while (next < clients.length) {
      const c = clients[next++]
      await c.connect()
      for (let k = 0; k < editsPerRoom; k++) c.text.insert(Math.floor(rand() * (c.text.length + 1)), EDIT)
      await c.roundTrip()
    }
  }
  await Promise.all(Array.from({ length: 25 }, worker))
  const loadCpu = meter.stop()
  const rssLoaded = rssMiB(pid)
  const failures = closedBy(clients).map((s) => `closed: ${s}`)
  clients.forEach((c) => c.close())
  const tIdle = performance.now()
  let rssIdle = rssMiB(pid)
  while (performance.now() - tIdle < idleWaitMs) {
    await sleep(500)
    rssIdle = rssMiB(pid)
  }
  // The rooms must still hold their content (persisted or in memory).
  const probe = makeClients(server, `${cfg.roomPrefix}${rooms - 1}`, 1, {})[0]
  await probe.connect()
  const chars = probe.text.length
  probe.close()
  return {
    rooms,
    rss_before_mib: rssBefore,
    rss_loaded_mib: rssLoaded,
    rss_idle_mib: rssIdle,
    idle_wait_s: idleWaitMs / 1000,
    load_s: loadCpu.wall_s,
    server_cpu_s: loadCpu.server_cpu_s,
    probe_chars: chars,
    persisted_after_idle: chars === editsPerRoom * EDIT.length,
    failures
  }
}

/** Presence: every client sends its awareness state `rate` times/s for `durationMs`. */
export async function presence (cfg) {
  const { server, clients: total, roomSize, rate, durationMs, seed } = cfg
  const rooms = Math.ceil(total / roomSize)
  const roomClients = Array.from({ length: rooms }, (_, i) =>
    makeClients(server, `${cfg.roomPrefix}${i}`, roomSize, {}, true))
  const all = roomClients.flat()
  all.forEach((c, i) => c.awareness.setLocalState({ user: { name: `u${i}` }, n: 0 }))
  await connectAll(all, 25)
  await sleep(200) // let the join-time awareness exchange finish before counting
  const base = all.map((c) => c.awarenessIn)
  const rand = rng(seed)
  const sent = new Int32Array(all.length)
  const meter = new CpuMeter(server.pid, server.clkTck)
  meter.start()
  const t0 = performance.now()
  const interval = 1000 / rate
  await Promise.all(all.map(async (c, i) => {
    const start = t0 + rand() * interval
    for (let k = 1; ; k++) {
      const due = start + k * interval
      if (due >= t0 + durationMs) break
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      c.awareness.setLocalState({ user: { name: `u${i}` }, n: k })
      c.sendAwareness()
      sent[i] = k
    }
  }))
  const sendEnd = performance.now()
  const seenFinal = () => roomClients.every((cs) => cs.every((r) => cs.every((s) =>
    s === r || (r.awareness.getStates().get(s.doc.clientID)?.n === s.awareness.getLocalState().n))))
  const converged = await waitUntil(seenFinal, 15000, 20)
  const tEnd = performance.now()
  const cpu = meter.stop()
  const delivered = all.reduce((a, c, i) => a + c.awarenessIn - base[i], 0)
  const sends = sent.reduce((a, b) => a + b, 0)
  const failures = closedBy(all).map((s) => `closed: ${s}`)
  if (!converged) failures.push('some client never saw a peer\'s final presence state')
  all.forEach((c) => c.close())
  return {
    clients: all.length,
    room_size: roomSize,
    sends,
    delivered,
    expected: sends * (roomSize - 1),
    send_window_s: (sendEnd - t0) / 1000,
    delivered_per_s: delivered / ((tEnd - t0) / 1000),
    converged,
    ...cpu,
    server_cpu_pct: (100 * cpu.server_cpu_s) / cpu.wall_s,
    failures
  }
}

export { bigbuild, bigjoin } from './bigroom.mjs'

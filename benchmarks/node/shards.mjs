// Several load generator processes for one run of `edits`, so that at 100+ rooms
// the clients' own CPU (one Node process is one core) does not set the latency.
//
// Rooms are dealt out round robin (room i to process i % n); a room's clients all
// live in one process, so every latency is still send-to-apply on one clock. The
// processes meet at two barriers: all connected ('ready') before anyone types, and
// all done measuring ('measured') before the late joiners verify. The coordinator
// (this process, idle meanwhile) reads the server's CPU between the two, so it
// covers the same window for every shard, and merges the shards' raw latencies.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CpuMeter, Samples } from './stats.mjs'

const ENTRY = fileURLToPath(new URL('./loadgen.mjs', import.meta.url))
const PHASES = ['ready', 'measured']

/** The global indices of the rooms this process runs (all of them unsharded). */
export function shardRooms (cfg) {
  const all = Array.from({ length: cfg.rooms }, (_, i) => i)
  return cfg.shard ? all.filter((i) => i % cfg.shard.count === cfg.shard.index) : all
}

/** In a shard: tell the coordinator this phase is reached, wait until every shard has. */
export async function barrier (cfg, phase) {
  if (!cfg.shard) return
  const released = new Promise((resolve) => {
    const on = (m) => {
      if (m && m.release === phase) {
        process.off('message', on)
        resolve()
      }
    }
    process.on('message', on)
  })
  process.send({ phase })
  await released
}

/** One shard's process: its messages, its result, and whether it ended early. */
class Shard {
  constructor (cfg, index, count) {
    const shardCfg = { ...cfg, processes: 1, shard: { index, count } }
    this.proc = fork(ENTRY, [JSON.stringify(shardCfg)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced'
    })
    this.reached = new Set()
    this.result = null
    this.waiters = []
    this.proc.on('message', (m) => {
      if (m && m.phase) this.reached.add(m.phase)
      if (m && m.result) this.result = m.result
      this._wake()
    })
    this.proc.on('exit', (code) => {
      this.exited = true
      if (!this.result) this.result = { failures: [`load shard ${index} exited ${code} without a result`] }
      this._wake()
    })
  }

  _wake () {
    const waiters = this.waiters
    this.waiters = []
    waiters.forEach((w) => w())
  }

  /** Resolves when the shard reached `phase` (true) or ended without it (false). */
  async at (phase) {
    while (!this.reached.has(phase)) {
      if (this.result) return false
      await new Promise((resolve) => this.waiters.push(resolve))
    }
    return true
  }

  async done () {
    while (!this.result) await new Promise((resolve) => this.waiters.push(resolve))
    return this.result
  }
}

/** Run `edits` over `cfg.processes` shards and merge their results into one. */
export async function runSharded (cfg) {
  const count = Math.min(cfg.processes, cfg.rooms)
  const shards = Array.from({ length: count }, (_, i) => new Shard(cfg, i, count))
  const meter = new CpuMeter(cfg.server.pid, cfg.server.clkTck)
  let cpu = null
  for (const phase of PHASES) {
    const all = await Promise.all(shards.map((s) => s.at(phase)))
    if (!all.every(Boolean)) break
    if (phase === 'ready') meter.start()
    if (phase === 'measured') cpu = meter.stop()
    shards.forEach((s) => s.proc.send({ release: phase }))
  }
  if (!cpu) shards.forEach((s) => { if (!s.exited) s.proc.kill() })
  const results = await Promise.all(shards.map((s) => s.done()))
  return merge(results, cpu)
}

const sum = (rs, k) => rs.reduce((a, r) => a + (r[k] || 0), 0)
const max = (rs, k) => Math.max(...rs.map((r) => r[k] || 0))

function samplesOf (rs, key) {
  const s = new Samples(1 << 12)
  for (const r of rs) for (const v of r[key] || []) s.push(v)
  return s.summary()
}

function merge (rs, cpu) {
  const failures = rs.flatMap((r) => r.failures || [])
  if (!cpu) return { failures: failures.length ? failures : ['a load shard failed before measuring'] }
  const updates = sum(rs, 'updates')
  const deliveries = sum(rs, 'deliveries')
  const elapsed = max(rs, 'elapsed_s')
  const eachPct = rs.map((r) => (100 * (r.loadgen_cpu_s || 0)) / cpu.wall_s)
  const lag = samplesOf(rs, 'send_lag_samples_ms')
  return {
    clients: sum(rs, 'clients'),
    updates,
    deliveries,
    expected_deliveries: sum(rs, 'expected_deliveries'),
    lost: sum(rs, 'lost'),
    converged: rs.every((r) => r.converged),
    elapsed_s: elapsed,
    updates_per_s: updates / elapsed,
    deliveries_per_s: deliveries / elapsed,
    converge_ms: max(rs, 'converge_ms'),
    ...samplesOf(rs, 'latency_samples_ms'),
    server_cpu_s: cpu.server_cpu_s,
    wall_s: cpu.wall_s,
    // every shard's own CPU over its measured window; the coordinator's is in cpu
    loadgen_cpu_s: sum(rs, 'loadgen_cpu_s') + cpu.loadgen_cpu_s,
    loadgen_processes: rs.length,
    loadgen_cpu_pct_each: eachPct,
    loadgen_cpu_pct: Math.max(...eachPct), // the busiest process: one core is its ceiling
    loadgen_cpu_pct_total: (100 * (sum(rs, 'loadgen_cpu_s') + cpu.loadgen_cpu_s)) / cpu.wall_s,
    server_cpu_us_per_update: (cpu.server_cpu_s * 1e6) / Math.max(1, updates),
    server_cpu_pct: (100 * cpu.server_cpu_s) / cpu.wall_s,
    send_lag_p50_ms: lag.p50_ms,
    send_lag_p99_ms: lag.p99_ms,
    // the worst shard's, to tell a late send's cause (see LoopMeter)
    loop_delay_p99_ms: max(rs, 'loop_delay_p99_ms'),
    loop_delay_max_ms: max(rs, 'loop_delay_max_ms'),
    gc_pause_ms: max(rs, 'gc_pause_ms'),
    gc_pause_max_ms: max(rs, 'gc_pause_max_ms'),
    runqueue_wait_pct: max(rs, 'runqueue_wait_pct'),
    major_page_faults: sum(rs, 'major_page_faults'),
    loop_stalls: rs.flatMap((r, shard) => (r.loop_stalls || []).map((st) => ({ shard, ...st })))
      .sort((a, b) => b.late_ms - a.late_ms).slice(0, 5),
    failures
  }
}

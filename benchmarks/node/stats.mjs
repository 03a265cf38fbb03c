// Small measurement helpers shared by the workloads.
import { readFileSync } from 'node:fs'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

/** Deterministic PRNG (mulberry32) so every run makes the same edits. */
export function rng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Growable sample buffer for latencies (milliseconds). */
export class Samples {
  constructor (capacity = 1024) {
    this.buf = new Float64Array(capacity)
    this.n = 0
  }

  push (v) {
    if (this.n === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2)
      bigger.set(this.buf)
      this.buf = bigger
    }
    this.buf[this.n++] = v
  }

  /** The samples themselves (a shard hands them to the coordinator to merge). */
  values () {
    return this.buf.slice(0, this.n)
  }

  summary () {
    if (this.n === 0) return { n: 0, p50_ms: null, p99_ms: null, max_ms: null }
    const s = this.buf.slice(0, this.n).sort()
    const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))]
    return { n: this.n, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: s[s.length - 1] }
  }
}

/** user+sys CPU seconds of a process, from /proc/<pid>/stat (fields 14 and 15). */
export function cpuSeconds (pid, clkTck) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / clkTck
}

/** Resident set size of a process in MiB, from /proc/<pid>/status. */
export function rssMiB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = status.match(/VmRSS:\s+(\d+) kB/)
  return m ? Number(m[1]) / 1024 : null
}

/** Peak resident set size of a process since it started (VmHWM), in MiB. */
export function peakRssMiB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = status.match(/VmHWM:\s+(\d+) kB/)
  return m ? Number(m[1]) / 1024 : null
}

/** CPU meter over a phase: the server's and this load generator's own. */
export class CpuMeter {
  constructor (pid, clkTck) {
    this.pid = pid
    this.clkTck = clkTck
  }

  start () {
    this.server0 = cpuSeconds(this.pid, this.clkTck)
    this.self0 = process.cpuUsage()
    this.t0 = performance.now()
  }

  stop () {
    const self = process.cpuUsage(this.self0)
    return {
      server_cpu_s: cpuSeconds(this.pid, this.clkTck) - this.server0,
      loadgen_cpu_s: (self.user + self.system) / 1e6,
      wall_s: (performance.now() - this.t0) / 1000
    }
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Poll `done()` every few ms until true or the deadline passes; returns whether it became true. */
export async function waitUntil (done, timeoutMs, everyMs = 5) {
  const deadline = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > deadline) return false
    await sleep(everyMs)
  }
  return true
}

/** Run-queue wait of this process so far, ms (/proc/self/schedstat: run ns, wait ns, slices). */
function runQueueWaitMs () {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6
  } catch {
    return null // no schedstat (kernel without CONFIG_SCHEDSTATS)
  }
}

/**
 * Why edits may leave late: this process's event-loop delay, its GC pauses, its major
 * page faults and the time it was runnable but waiting for a core (another process had it). Late sends
 * with a large run-queue wait are the machine's; with a large loop delay but little
 * wait, this process's own work (or GC) held the loop.
 */
export class LoopMeter {
  start () {
    this.eld = monitorEventLoopDelay({ resolution: 1 })
    this.eld.enable()
    this.gcMs = 0
    this.gcMaxMs = 0
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        this.gcMs += e.duration
        this.gcMaxMs = Math.max(this.gcMaxMs, e.duration)
      }
    })
    this.gc.observe({ entryTypes: ['gc'] })
    this.wait0 = runQueueWaitMs()
    this.faults0 = process.resourceUsage().majorPageFault
    this.t0 = performance.now()
    this.stalls = new StallLog(this.t0)
  }

  stop () {
    this.eld.disable()
    this.gc.disconnect()
    this.stalls.stop()
    const wallMs = performance.now() - this.t0
    const wait = runQueueWaitMs()
    return {
      loop_delay_p99_ms: this.eld.percentile(99) / 1e6,
      loop_delay_max_ms: this.eld.max / 1e6,
      gc_pause_ms: this.gcMs,
      gc_pause_max_ms: this.gcMaxMs,
      runqueue_wait_pct: wait === null || this.wait0 === null ? null : (100 * (wait - this.wait0)) / wallMs,
      // a page read back from disk stops the whole process for as long as the disk takes
      major_page_faults: process.resourceUsage().majorPageFault - this.faults0,
      loop_stalls: this.stalls.worst()
    }
  }
}

const STALL_TICK_MS = 10
const STALL_MS = 50
const STALLS_KEPT = 5

/**
 * The loop's longest stops, each with what it was: a 10 ms tick that comes more than
 * 50 ms late records when (s into the window), how late (ms), how much of that this
 * process waited for a core (run-queue ms) and how much CPU it used meanwhile (its own
 * work or GC). Waiting ~ late: the machine; CPU ~ late: this process.
 */
class StallLog {
  constructor (t0) {
    this.t0 = t0
    this.found = []
    this.last = performance.now()
    this.wait = runQueueWaitMs()
    this.cpu = process.cpuUsage()
    this.timer = setInterval(() => this._tick(), STALL_TICK_MS)
  }

  _tick () {
    const now = performance.now()
    const wait = runQueueWaitMs()
    const cpu = process.cpuUsage()
    const late = now - this.last - STALL_TICK_MS
    if (late > STALL_MS) {
      const used = process.cpuUsage(this.cpu)
      this.found.push({
        at_s: (this.last - this.t0) / 1000,
        late_ms: late,
        runqueue_ms: wait === null || this.wait === null ? null : wait - this.wait,
        cpu_ms: (used.user + used.system) / 1000
      })
    }
    this.last = now
    this.wait = wait
    this.cpu = cpu
  }

  stop () {
    clearInterval(this.timer)
  }

  worst () {
    return this.found.sort((a, b) => b.late_ms - a.late_ms).slice(0, STALLS_KEPT)
  }
}

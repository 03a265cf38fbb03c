// Workload "big room": one large document, cold after a server restart, joined
// while a small room carries typing traffic.
//
// bigbuild: a stock y-websocket client (WebsocketProvider) builds the document
//   (array items in transactions of 1,000, then text appended in 16 KiB pieces)
//   and a fresh client checks the server has all of it.
// bigjoin (after the harness restarted the server): a small room of two clients
//   (one edit every 20 ms, latency read at the second client), one client joins
//   the big room, then four join at once; each joiner is its own worker thread.
import { Worker } from 'node:worker_threads'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { SimClient } from './client.mjs'
import { EditTracker } from './tracker.mjs'
import { Samples, CpuMeter, rng, sleep, waitUntil, rssMiB, peakRssMiB } from './stats.mjs'

const ITEMS_PER_TX = 1000
const TEXT_PIECE = 16 * 1024

/** The deterministic content of array item `i` (`bytes` ASCII characters). */
export function itemString (i, bytes) {
  const head = `item ${i} `
  let s = head
  let x = (i * 2654435761) >>> 0
  while (s.length < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    s += String.fromCharCode(97 + ((x >>> 16) % 26))
  }
  return s
}

function roomUrl (server, room) {
  return server.flavor === 'hocuspocus' ? server.base : `${server.base}/${encodeURIComponent(room)}`
}

/** The y-websocket client with permessage-deflate off, like every other client here. */
class PlainWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { perMessageDeflate: false })
  }
}

export async function bigbuild (cfg) {
  const { server, items, itemBytes, textChars, seed } = cfg
  if (server.flavor !== 'path') throw new Error('big room: y-websocket protocol servers only')
  const room = `${cfg.roomPrefix}big`
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.base, room, doc, { WebSocketPolyfill: PlainWebSocket, disableBc: true })
  const t0 = performance.now()
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('builder did not sync in 30 s')), 30000)
    provider.on('sync', (synced) => { if (synced) { clearTimeout(timer); resolve() } })
  })
  const arr = doc.getArray('items')
  const text = doc.getText('t')
  const drain = () => waitUntil(() => !provider.ws || provider.ws.bufferedAmount < (1 << 20), 120000, 2)
  for (let i = 0; i < items; i += ITEMS_PER_TX) {
    const batch = []
    for (let j = i; j < Math.min(items, i + ITEMS_PER_TX); j++) batch.push(itemString(j, itemBytes))
    arr.push(batch)
    await drain()
  }
  const rand = rng(seed)
  for (let n = 0; n < textChars; n += TEXT_PIECE) {
    let piece = ''
    const len = Math.min(TEXT_PIECE, textChars - n)
    while (piece.length < len) piece += String.fromCharCode(97 + Math.floor(rand() * 26))
    text.insert(text.length, piece)
    await drain()
  }
  await waitUntil(() => provider.ws && provider.ws.bufferedAmount === 0, 120000, 5)
  const sentAt = performance.now()
  const docBytes = Y.encodeStateAsUpdate(doc).length
  const lastItem = itemString(items - 1, itemBytes)
  // A fresh client must receive all of it (the server may still be reading the last frames).
  const failures = []
  let verify = null
  for (let attempt = 0; attempt < 30; attempt++) {
    const c = new SimClient({ url: roomUrl(server, room), flavor: server.flavor, room })
    await c.connect(120000)
    const a = c.doc.getArray('items')
    verify = { items: a.length, chars: c.text.length, ms: c.syncedAt - c.t0 }
    const ok = a.length === items && c.text.length === textChars && a.get(items - 1) === lastItem
    c.close()
    if (ok) break
    verify = { ...verify, incomplete: true }
    await sleep(1000)
  }
  if (verify.incomplete) failures.push(`server holds ${verify.items} items, ${verify.chars} chars after the build`)
  provider.destroy()
  await sleep(cfg.settleMs || 2000) // let the server write out what it received (y-leveldb writes asynchronously)
  return {
    room,
    items,
    item_bytes: itemBytes,
    text_chars: textChars,
    doc_bytes: docBytes,
    last_item: lastItem,
    build_s: (sentAt - t0) / 1000,
    warm_sync_ms: verify.ms,
    rss_after_build_mib: rssMiB(server.pid),
    failures
  }
}

function spawnJoiners (n, data) {
  return Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    const w = new Worker(new URL('./joiner.mjs', import.meta.url), { workerData: data })
    w.once('error', reject)
    w.once('message', () => resolve(w))
  })))
}

function runJoiners (workers) {
  const results = workers.map((w) => new Promise((resolve) => w.once('message', resolve)))
  workers.forEach((w) => w.postMessage('go'))
  return Promise.all(results).finally(() => workers.forEach((w) => w.terminate()))
}

export async function bigjoin (cfg) {
  const { server, items, textChars, lastItem, seed } = cfg
  const pid = server.pid
  const room = `${cfg.roomPrefix}big`
  const rssStart = rssMiB(pid)
  let rssPeakSampled = rssStart
  const rssTimer = setInterval(() => { rssPeakSampled = Math.max(rssPeakSampled, rssMiB(pid)) }, 20)
  const failures = []
  // The small room: client 0 types one character every 20 ms, client 1 reads.
  const small = ['small', 'small'].map(() => new SimClient({ url: roomUrl(server, `${cfg.roomPrefix}small`), flavor: server.flavor, room: `${cfg.roomPrefix}small` }))
  for (const c of small) await c.connect()
  const phases = { baseline: new Samples(), during: new Samples(), after: new Samples() }
  const tracker = new EditTracker(small, 1 << 16, phases.baseline)
  const rand = rng(seed)
  let typing = true
  const typist = (async () => {
    let due = performance.now()
    while (typing) {
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      tracker.edit(0, 'x', rand)
      due += cfg.typingIntervalMs || 20
    }
  })()
  const data = { url: roomUrl(server, room), flavor: server.flavor, room, items, chars: textChars, lastItem, timeoutMs: cfg.joinTimeoutMs || 300000 }
  const one = await spawnJoiners(1, data)
  const four = await spawnJoiners(4, data)
  await sleep(cfg.baselineMs || 2000)
  const meter = new CpuMeter(pid, server.clkTck)
  meter.start()
  tracker.samples = phases.during
  const tCold = performance.now()
  const [cold] = await runJoiners(one)
  const coldWall = performance.now() - tCold
  await sleep(1000)
  const tCrowd = performance.now()
  const crowd = await runJoiners(four)
  const crowdWall = performance.now() - tCrowd
  const cpu = meter.stop()
  tracker.samples = phases.after
  await sleep(cfg.tailMs || 1000)
  typing = false
  await typist
  const converged = await waitUntil(() => tracker.lost() === 0, 30000)
  clearInterval(rssTimer)
  const peak = peakRssMiB(pid)
  for (const [who, r] of [['first joiner', cold], ...crowd.map((r, i) => [`crowd joiner ${i + 1}`, r])]) {
    failures.push(...r.failures.map((f) => `${who}: ${f}`))
  }
  if (!converged) failures.push(`small room: ${tracker.lost()} edits never arrived`)
  if (!tracker.sameText()) failures.push('small room diverged')
  failures.push(...small.filter((c) => c.closeInfo).map((c) => `small room closed ${c.closeInfo.code}`))
  small.forEach((c) => c.close())
  const sum = (s) => s.summary()
  const crowdOk = crowd.filter((r) => r.complete_ms !== undefined)
  return {
    cold_complete_ms: cold.complete_ms,
    cold_sync_step2_ms: cold.sync_step2_ms,
    cold_received_ms: cold.received_ms,
    cold_client_apply_ms: cold.apply_ms,
    cold_bytes: cold.bytes,
    cold_wall_ms: coldWall,
    crowd_all_complete_ms: crowdWall,
    crowd_max_complete_ms: crowdOk.length ? Math.max(...crowdOk.map((r) => r.complete_ms)) : null,
    crowd_min_complete_ms: crowdOk.length ? Math.min(...crowdOk.map((r) => r.complete_ms)) : null,
    crowd_max_client_apply_ms: crowdOk.length ? Math.max(...crowdOk.map((r) => r.apply_ms)) : null,
    small_edits: tracker.totalEdits(),
    small_baseline: sum(phases.baseline),
    small_during: sum(phases.during),
    small_after: sum(phases.after),
    small_p50_ms: phases.during.summary().p50_ms,
    small_p99_ms: phases.during.summary().p99_ms,
    small_max_ms: phases.during.summary().max_ms,
    small_baseline_p99_ms: phases.baseline.summary().p99_ms,
    rss_start_mib: rssStart,
    rss_peak_sampled_mib: rssPeakSampled,
    rss_peak_mib: peak, // VmHWM: the process's peak since the restart
    rss_end_mib: rssMiB(pid),
    ...cpu,
    failures
  }
}

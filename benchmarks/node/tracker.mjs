// Tracks every text edit of every client in one room from send to arrival at
// every other client of the room: latency samples, deliveries, lost updates.
//
// Arrival is read from each receiving transaction's state vector (beforeState ->
// afterState of the sender's client id). An edit of L characters advances its
// sender's clock by exactly L, so the sender's cumulative clock after each edit
// identifies it: no marker has to be parsed out of the document.
import { performance } from 'node:perf_hooks'

export class EditTracker {
  /**
   * @param {import('./client.mjs').SimClient[]} clients every client of the room
   * @param {number} maxEdits upper bound of edits per client
   * @param {import('./stats.mjs').Samples} samples where latencies go (shared across rooms)
   */
  constructor (clients, maxEdits, samples) {
    const n = clients.length
    this.clients = clients
    this.samples = samples
    this.byId = new Map(clients.map((c, i) => [c.doc.clientID, i]))
    this.endClock = clients.map(() => new Float64Array(maxEdits))
    this.sentAt = clients.map(() => new Float64Array(maxEdits))
    this.clock = new Float64Array(n)
    this.count = new Int32Array(n)
    this.ptr = Array.from({ length: n }, () => new Int32Array(n)) // ptr[receiver][sender]
    this.deliveries = 0
    this.lastArrival = 0
    this.onArrival = null // (sender, receiver) => void
    clients.forEach((c, r) => c.doc.on('afterTransaction', (tr) => this._arrived(r, tr)))
  }

  _arrived (r, tr) {
    if (tr.origin !== this.clients[r]) return
    const now = performance.now()
    for (const [cid, after] of tr.afterState) {
      const s = this.byId.get(cid)
      if (s === undefined || s === r || after <= (tr.beforeState.get(cid) || 0)) continue
      const row = this.ptr[r]
      const end = this.endClock[s]
      const sent = this.sentAt[s]
      const cnt = this.count[s]
      let p = row[s]
      const p0 = p
      while (p < cnt && end[p] <= after) {
        this.samples.push(now - sent[p])
        p++
      }
      row[s] = p
      if (p > p0) {
        this.deliveries += p - p0
        this.lastArrival = now
        if (this.onArrival) this.onArrival(s, r)
      }
    }
  }

  /** Client `s` inserts `str` at a position drawn from `rand`. */
  edit (s, str, rand) {
    const c = this.clients[s]
    const k = this.count[s]
    const pos = Math.floor(rand() * (c.text.length + 1))
    this.clock[s] += str.length
    this.endClock[s][k] = this.clock[s]
    this.sentAt[s][k] = performance.now()
    this.count[s] = k + 1
    c.text.insert(pos, str)
  }

  /** Edits of `s` not yet seen by `r`. */
  pending (s, r) {
    return this.count[s] - this.ptr[r][s]
  }

  /** Expected minus seen deliveries over all (sender, receiver) pairs. */
  lost () {
    let missing = 0
    for (let r = 0; r < this.clients.length; r++) {
      for (let s = 0; s < this.clients.length; s++) if (s !== r) missing += this.pending(s, r)
    }
    return missing
  }

  totalEdits () {
    return this.count.reduce((a, b) => a + b, 0)
  }

  expectedDeliveries () {
    return this.totalEdits() * (this.clients.length - 1)
  }

  /** True when every client's text is the same string. */
  sameText () {
    const first = this.clients[0].text.toString()
    return this.clients.every((c) => c.text.toString() === first)
  }
}

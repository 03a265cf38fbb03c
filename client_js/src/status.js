/**
 * A tiny observable for the connection state shown to users.
 *
 * Kept separate from the provider so the UI (and tests) can depend on a stable, documented
 * shape instead of y-websocket internals.
 * @module status
 */

/** @typedef {'offline' | 'connecting' | 'syncing' | 'synced' | 'saved'} ConnectionState */

/**
 * @typedef {object} StatusSnapshot
 * @property {ConnectionState} state
 * @property {number} pending local update messages not yet confirmed durable by the server
 * @property {number} seq the room's log position from the latest "saved" acknowledgement (0 if none)
 * @property {string | null} error why the connection stopped for good (e.g. a 44xx close), else null
 * @property {number} received bytes received on the current connection (how far a large room's
 *   first sync has got; 0 while offline)
 * @property {string | null} rejected the reason of the latest edit of ours that the server's rules
 *   refused and undid (it starts with `rule:`), else null
 */

/** @typedef {(snapshot: StatusSnapshot) => void} StatusListener */

export class Status {
  constructor () {
    /** @type {StatusSnapshot} */
    this._value = { state: 'offline', pending: 0, seq: 0, error: null, received: 0, rejected: null }
    /** @type {Set<StatusListener>} */
    this._listeners = new Set()
  }

  /** @returns {ConnectionState} */
  get state () { return this._value.state }

  /** @returns {number} */
  get pending () { return this._value.pending }

  /** @returns {number} */
  get seq () { return this._value.seq }

  /** @returns {string | null} */
  get error () { return this._value.error }

  /** @returns {StatusSnapshot} a copy, safe to keep */
  get value () { return { ...this._value } }

  /**
   * Merge a partial change and notify listeners only when something actually changed.
   * @param {Partial<StatusSnapshot>} change
   */
  set (change) {
    const next = { ...this._value, ...change }
    const prev = this._value
    if (next.state === prev.state && next.pending === prev.pending &&
        next.seq === prev.seq && next.error === prev.error && next.received === prev.received &&
        next.rejected === prev.rejected) return
    this._value = next
    for (const listener of [...this._listeners]) listener({ ...next })
  }

  /**
   * Call `listener` now and on every change.
   * @param {StatusListener} listener
   * @returns {() => void} unsubscribe
   */
  subscribe (listener) {
    this._listeners.add(listener)
    listener(this.value)
    return () => { this._listeners.delete(listener) }
  }

  /**
   * Resolve once `predicate` holds; reject after `timeoutMs` so no caller waits forever.
   * @param {(snapshot: StatusSnapshot) => boolean} predicate
   * @param {number} [timeoutMs]
   * @returns {Promise<StatusSnapshot>}
   */
  until (predicate, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      /** @type {() => void} */
      let unsubscribe = () => {}
      const timer = setTimeout(() => {
        unsubscribe()
        reject(new Error(`status wait timed out after ${timeoutMs} ms (now ${JSON.stringify(this._value)})`))
      }, timeoutMs)
      let done = false
      unsubscribe = this.subscribe((snapshot) => {
        if (done || !predicate(snapshot)) return
        done = true
        clearTimeout(timer)
        queueMicrotask(() => unsubscribe())
        resolve(snapshot)
      })
      if (done) unsubscribe()
    })
  }
}

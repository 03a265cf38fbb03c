/**
 * Resync a replica that is stuck: an update has waited for a dependency longer than a sync takes.
 *
 * Yjs (13.6) keeps updates whose dependencies have not arrived in `doc.store.pendingStructs` /
 * `pendingDs` and retries them as later updates come. In rare delivery orders (about one in ten
 * thousand shuffled, partly merged orders of a few dozen updates) it leaves them there after
 * what they waited for arrived, and re-applying its own pending update does not help; a fresh
 * step 2 from the server does. So while connected and synced, a replica with something pending
 * for longer than a resync would take (at least 1 s and four first syncs) sends a new SyncStep1
 * on the same socket; while that changes nothing, the wait doubles, up to once a minute.
 * @module resync
 */

import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'

const MESSAGE_SYNC = 0

/**
 * @typedef {object} ResyncOptions
 * @property {number} [minMs] shortest wait before a resync (default 1000)
 * @property {number} [maxMs] longest wait between resyncs that change nothing (default 60000)
 * @property {number} [checkMs] how often to look (default 250)
 * @property {() => number} [now] clock in ms (default Date.now)
 */

/**
 * @typedef {object} ResyncTarget
 * @property {import('yjs').Doc} doc
 * @property {boolean} synced
 * @property {boolean} wsconnected
 * @property {{ send: (data: Uint8Array) => void } | null} ws
 */

/**
 * Start watching `provider` (every `checkMs`; `check()` runs one look now).
 * @param {ResyncTarget} provider a y-websocket WebsocketProvider (or anything shaped like one)
 * @param {ResyncOptions} [options]
 * @returns {{ stop: () => void, check: () => boolean, resyncs: () => number }}
 */
export function watchPending (provider, options = {}) {
  const { minMs = 1000, maxMs = 60000, checkMs = 250, now = Date.now } = options
  /** @type {number | null} */
  let since = null
  /** @type {number | null} */
  let connectedAt = null
  let handshakeMs = 0
  let interval = minMs
  /** @type {number | null} */
  let due = null
  let count = 0

  /** @returns {boolean} whether a SyncStep1 was sent */
  function check () {
    const store = provider.doc.store
    const pending = store.pendingStructs !== null || store.pendingDs !== null
    if (!provider.wsconnected) connectedAt = null
    else if (connectedAt === null) connectedAt = now()
    if (provider.synced && connectedAt !== null && handshakeMs === 0) {
      handshakeMs = Math.max(1, now() - connectedAt)
    }
    if (!pending || !provider.synced || !provider.wsconnected || provider.ws === null) {
      since = due = null
      interval = Math.min(Math.max(minMs, 4 * handshakeMs), maxMs)
      return false
    }
    if (since === null) since = now()
    if (due === null) due = since + interval
    if (now() < due) return false
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(encoder, provider.doc)
    provider.ws.send(encoding.toUint8Array(encoder))
    count++
    interval = Math.min(interval * 2, maxMs)
    due = now() + interval
    return true
  }

  const timer = setInterval(check, checkMs)
  if (typeof timer === 'object' && timer !== null && 'unref' in timer) timer.unref()
  return { stop: () => clearInterval(timer), check, resyncs: () => count }
}

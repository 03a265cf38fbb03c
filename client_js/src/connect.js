/**
 * connectRoom: one room = one Y.Doc, synced over y-websocket, persisted in IndexedDB.
 *
 * All CRDT and sync work is done by yjs, y-websocket and y-indexeddb. This module only adds what
 * a chat-style app needs on top: an honest status (including "saved" from the server's ack
 * extension), a count of unconfirmed local changes that survives a reload, and reconnects with
 * jittered backoff.
 * @module connect
 */

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { IndexeddbPersistence } from 'y-indexeddb'
import { Awareness, removeAwarenessStates } from 'y-protocols/awareness'
import { readAuthMessage } from 'y-protocols/auth'
import { Status } from './status.js'
import { PendingTracker, MESSAGE_SAVED, isUpdateMessage, readSaved } from './ack.js'
import { backoffDelay, isPermanentClose, isSlowDownClose } from './backoff.js'
import { watchPending } from './resync.js'

/** Key in y-indexeddb's custom store holding the number of changes the server has not confirmed. */
const PENDING_KEY = 'performer:pending'
/** y-protocols' auth message type, and how a rule's refusal reason starts. */
const MESSAGE_AUTH = 2
const RULE_PREFIX = 'rule:'

/**
 * @typedef {object} RoomUser
 * @property {string} name
 * @property {string} [color]
 */

/**
 * @typedef {object} ConnectOptions
 * @property {string} url WebSocket base, e.g. `ws://127.0.0.1:8080/rooms`
 * @property {string} room
 * @property {string | null} [token] room token, sent as `?token=` (browsers cannot set headers)
 * @property {RoomUser} [user] published in awareness as `{ user, typing: false }`
 * @property {boolean} [persist] keep the doc in IndexedDB (default: when IndexedDB exists)
 * @property {any} [WebSocket] WebSocket class (default: the global one; `ws` in Node)
 * @property {import('./backoff.js').BackoffOptions} [backoff]
 * @property {boolean} [connect] start connecting right away (default true)
 */

/**
 * @typedef {object} Room
 * @property {Y.Doc} doc
 * @property {WebsocketProvider} provider
 * @property {Awareness} awareness
 * @property {Status} status
 * @property {IndexeddbPersistence | null} persistence
 * @property {Promise<void>} ready resolves once local data is loaded and connecting has begun
 * @property {() => void} connect
 * @property {() => void} disconnect
 * @property {() => Promise<void>} destroy
 */

/**
 * Open a room.
 * @param {ConnectOptions} options
 * @returns {Room}
 */
export function connectRoom (options) {
  const { url, room, token = null, user, backoff = {} } = options
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  const status = new Status()
  const tracker = new PendingTracker()
  const idbAvailable = typeof indexedDB !== 'undefined'
  const persistence = (options.persist ?? idbAvailable)
    ? new IndexeddbPersistence(replicaName(url, room), doc)
    : null
  /** @type {WebsocketProvider | null} */
  let provider = null

  // Registered before the provider's own listener so a change is counted before it is sent.
  doc.on('update', (/** @type {Uint8Array} */ _update, /** @type {unknown} */ origin) => {
    if (origin !== null && (origin === provider || origin === persistence)) return
    tracker.change()
    refresh()
  })

  const Socket = instrumentSocket(options.WebSocket ?? globalThis.WebSocket, tracker, (bytes) => {
    // Progress only matters until the first sync is done; later traffic would just re-render.
    if (bytes === 0 || !ws.synced) status.set({ received: bytes })
  })
  /** @type {Record<string, string>} */
  const params = { ack: '1' }
  if (token) params.token = token
  const ws = new WebsocketProvider(url, encodeURIComponent(room), doc, {
    connect: false,
    awareness,
    params,
    WebSocketPolyfill: Socket,
    maxBackoffTime: backoff.maxDelay ?? 10000,
    shouldReconnect: (event) => !isPermanentClose(event.code)
  })
  provider = ws
  const resync = watchPending(ws) // a replica stuck with pending updates asks for a fresh step 2
  ws.messageHandlers[MESSAGE_SAVED] = (_encoder, decoder) => {
    const { count, seq } = readSaved(decoder)
    tracker.ack(count)
    status.set({ seq: Math.max(seq, status.seq) })
    refresh()
  }
  // Permission denied: a rule refused (and the server undid) part of an edit: the status says
  // why; other denials (a read-only token) are logged as y-websocket does.
  ws.messageHandlers[MESSAGE_AUTH] = (_encoder, decoder) => {
    readAuthMessage(decoder, doc, (_doc, reason) => {
      if (reason.startsWith(RULE_PREFIX)) status.set({ rejected: reason })
      else console.warn(`Permission denied to access ${ws.url}.\n${reason}`)
    })
  }
  if (user) awareness.setLocalState({ user, typing: false })

  let wanted = false
  let attempt = 0
  let holdBackoff = false
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null
  let restored = persistence === null
  let storedPending = -1

  function refresh () {
    status.set({ state: computeState(ws, tracker.pending), pending: tracker.pending })
    if (restored && persistence && storedPending !== tracker.pending) {
      storedPending = tracker.pending
      persistence.set(PENDING_KEY, tracker.pending).catch(() => { storedPending = -1 })
    }
  }

  function clearTimer () {
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  /** Replace y-websocket's fixed retry schedule with a jittered one. */
  function scheduleReconnect () {
    clearTimer()
    timer = setTimeout(() => {
      timer = null
      if (!wanted) return
      if (isBrowserOffline()) return scheduleReconnect()
      ws.connect()
    }, backoffDelay(attempt++, backoff))
  }

  ws.on('connection-close', (event) => {
    if (!wanted) return
    if (event && isPermanentClose(event.code)) {
      // The server decided (bad token, wrong room, too large...): retrying cannot help.
      wanted = false
      status.set({ error: `closed by server: ${event.code} ${event.reason}`.trim() })
    } else {
      if (event && isSlowDownClose(event.code)) holdBackoff = true
      ws.shouldConnect = false // cancels the retry y-websocket schedules right after this event
      scheduleReconnect()
    }
    queueMicrotask(refresh)
  })
  ws.on('status', () => refresh())
  ws.on('sync', (synced) => {
    if (synced && !holdBackoff) attempt = 0
    if (synced) holdBackoff = false
    refresh()
  })

  function connect () {
    wanted = true
    clearTimer()
    status.set({ error: null })
    if (ws.ws === null) ws.connect()
    refresh()
  }

  function disconnect () {
    wanted = false
    clearTimer()
    ws.disconnect()
    refresh()
  }

  const onOnline = () => {
    refresh()
    if (!wanted || ws.ws !== null) return
    attempt = 0
    clearTimer()
    ws.connect()
  }
  // A socket does not survive the network going away, but the browser may keep it "open" for a
  // long time, and whatever is sent meanwhile is lost. Close it at once (keeping the same-browser
  // channel between tabs); the next connection starts with a full sync, so nothing goes missing.
  const onOffline = () => {
    if (wanted && ws.ws !== null) {
      ws.disconnect()
      ws.connectBc()
    }
    refresh()
  }
  const onPageHide = () => removeAwarenessStates(awareness, [doc.clientID], 'window unload')
  if (typeof window !== 'undefined' && typeof window.addEventListener === 'function') {
    window.addEventListener('online', onOnline)
    window.addEventListener('offline', onOffline)
    window.addEventListener('pagehide', onPageHide)
  }

  const ready = (async () => {
    if (persistence) {
      await persistence.whenSynced
      const carried = await persistence.get(PENDING_KEY).catch(() => 0)
      if (typeof carried === 'number' && carried > 0) tracker.carry(carried)
      restored = true
    }
    if (options.connect ?? true) connect()
    else refresh()
  })()

  async function destroy () {
    wanted = false
    clearTimer()
    if (typeof window !== 'undefined' && typeof window.removeEventListener === 'function') {
      window.removeEventListener('online', onOnline)
      window.removeEventListener('offline', onOffline)
      window.removeEventListener('pagehide', onPageHide)
    }
    await ready.catch(() => {})
    resync.stop()
    removeAwarenessStates(awareness, [doc.clientID], 'destroy')
    ws.destroy()
    awareness.destroy()
    if (persistence) await persistence.destroy()
    status.set({ state: 'offline' })
  }

  return { doc, provider: ws, awareness, status, persistence, ready, connect, disconnect, destroy }
}

/**
 * The IndexedDB database that holds the local replica of `room` as served by `url`: one per server
 * and room, so a staging and a production deployment (or two local ports) never share data even
 * when their rooms have the same name. Query string and trailing slashes do not count (a token in
 * the URL must not start a new replica). Rooms cannot contain "/", so the name is unambiguous.
 * It is the name this client has always used for such URLs, so existing replicas are kept.
 * @param {string} url WebSocket base, e.g. `wss://chat.example.com/rooms`
 * @param {string} room
 * @returns {string} e.g. `performer-sync:wss://chat.example.com/rooms/lobby`
 */
export function replicaName (url, room) {
  const base = new URL(url)
  return `performer-sync:${base.protocol}//${base.host}${base.pathname.replace(/\/+$/, '')}/${room}`
}

/**
 * @param {WebsocketProvider} ws
 * @param {number} pending
 * @returns {import('./status.js').ConnectionState}
 */
function computeState (ws, pending) {
  if (ws.wsconnected && !isBrowserOffline()) {
    if (!ws.synced) return 'syncing'
    return pending === 0 ? 'saved' : 'synced'
  }
  if (ws.wsconnecting && !isBrowserOffline()) return 'connecting'
  return 'offline'
}

function isBrowserOffline () {
  return typeof navigator !== 'undefined' && navigator.onLine === false
}

/**
 * Subclass the WebSocket so every outgoing update-carrying frame is counted in send order,
 * which is exactly how the server counts them for its acknowledgements, and the bytes received
 * on each connection are reported (a large room's first sync shows its progress).
 * @param {any} Base
 * @param {PendingTracker} tracker
 * @param {(bytes: number) => void} onReceived
 * @returns {typeof WebSocket}
 */
function instrumentSocket (Base, tracker, onReceived) {
  if (typeof Base !== 'function') throw new Error('no WebSocket implementation: pass options.WebSocket')
  class CountingWebSocket extends Base {
    /**
     * @param {string} address
     * @param {string | string[]} [protocols]
     */
    constructor (address, protocols) {
      super(address, protocols)
      tracker.newConnection()
      let received = 0
      onReceived(0)
      this.addEventListener('message', (/** @type {MessageEvent} */ event) => {
        const data = event.data
        received += data instanceof ArrayBuffer ? data.byteLength : (data?.size ?? data?.length ?? 0)
        onReceived(received)
      })
    }

    /** @param {any} data */
    send (data) {
      if (isUpdateMessage(data)) tracker.sent()
      super.send(data)
    }
  }
  return /** @type {typeof WebSocket} */ (/** @type {unknown} */ (CountingWebSocket))
}

// One simulated Yjs client: a Y.Doc plus the y-websocket sync protocol over a
// plain `ws` socket, written out here (rather than using WebsocketProvider) so
// that the same code can also speak Hocuspocus' framing, which prefixes every
// message with the document name and wants an auth message first.
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const MSG_AUTH = 2
const MSG_HOCUS_SYNC_REPLY = 4
const MSG_SAVED = 100

export class SimClient {
  /**
   * @param {object} opts
   * @param {string} opts.url  websocket URL (for flavor 'path' the room is already in it)
   * @param {'path'|'hocuspocus'} opts.flavor
   * @param {string} opts.room
   * @param {boolean} [opts.awareness] keep a y-protocols Awareness and apply peers' states
   */
  constructor ({ url, flavor, room, awareness = false }) {
    this.url = url
    this.flavor = flavor
    this.room = room
    this.doc = new Y.Doc()
    this.text = this.doc.getText('t')
    this.awareness = awareness ? new awarenessProtocol.Awareness(this.doc) : null
    if (this.awareness) this.awareness.setLocalState(null)
    this.ws = null
    this.synced = false
    this.bytesIn = 0
    this.msgsIn = 0
    this.awarenessIn = 0
    this.updatesSent = 0
    this.saved = 0
    this.closeInfo = null
    this.onSaved = null
    this.onSynced = null
    this.doc.on('update', (update, origin) => {
      if (origin === this) return
      const enc = this._encoder(MSG_SYNC)
      syncProtocol.writeUpdate(enc, update)
      this.updatesSent++
      this._send(enc)
    })
  }

  /** An encoder with the framing prefix and message type written. */
  _encoder (type) {
    const enc = encoding.createEncoder()
    if (this.flavor === 'hocuspocus') encoding.writeVarString(enc, this.room)
    encoding.writeVarUint(enc, type)
    return enc
  }

  _send (enc) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encoding.toUint8Array(enc))
  }

  /** Open the socket and resolve once the server's SyncStep2 has been applied. */
  connect (timeoutMs = 30000) {
    this.t0 = performance.now()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sync timeout ${this.url} ${this.room}`)), timeoutMs)
      this.onSynced = () => { clearTimeout(timer); resolve(this) }
      const ws = new WebSocket(this.url, { perMessageDeflate: false })
      ws.binaryType = 'nodebuffer'
      this.ws = ws
      ws.on('open', () => this._onOpen())
      ws.on('message', (data) => this._onMessage(data))
      ws.on('error', (err) => { clearTimeout(timer); reject(err) })
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        if (!this.synced) { clearTimeout(timer); reject(new Error(`closed ${code} ${reason}`)) }
      })
    })
  }

  _onOpen () {
    if (this.flavor === 'hocuspocus') {
      const auth = this._encoder(MSG_AUTH)
      encoding.writeVarUint(auth, 0) // AuthMessageType.Token
      encoding.writeVarString(auth, '')
      this._send(auth)
    }
    const enc = this._encoder(MSG_SYNC)
    syncProtocol.writeSyncStep1(enc, this.doc)
    this._send(enc)
    if (this.awareness && this.awareness.getLocalState() !== null) this.sendAwareness()
  }

  _onMessage (data) {
    this.lastMsgAt = performance.now()
    this.bytesIn += data.length
    this.msgsIn++
    const dec = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.length))
    if (this.flavor === 'hocuspocus') decoding.readVarString(dec)
    const type = decoding.readVarUint(dec)
    switch (type) {
      case MSG_SYNC:
      case MSG_HOCUS_SYNC_REPLY: {
        const enc = this._encoder(MSG_SYNC)
        const sub = syncProtocol.readSyncMessage(dec, enc, this.doc, this)
        if (sub === syncProtocol.messageYjsSyncStep1) {
          this.updatesSent++ // our SyncStep2 reply: the saved ack counts it as an update message
          this._send(enc)
        }
        if (sub === syncProtocol.messageYjsSyncStep2 && !this.synced) {
          this.synced = true
          this.syncedAt = performance.now()
          this.bytesAtSync = this.bytesIn
          if (this.onSynced) this.onSynced()
        }
        break
      }
      case MSG_AWARENESS: {
        this.awarenessIn++
        if (this.awareness) {
          awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(dec), this)
        }
        break
      }
      case MSG_AUTH: {
        const sub = decoding.readVarUint(dec)
        if (sub === 0) throw new Error(`permission denied: ${decoding.readVarString(dec)}`)
        break
      }
      case MSG_SAVED: {
        this.saved = decoding.readVarUint(dec)
        if (this.onSaved) this.onSaved(this.saved)
        break
      }
      default:
        break // query-awareness, hocuspocus SyncStatus / stateless: nothing to do
    }
  }

  /** Broadcast this client's awareness state (as y-websocket's provider does on change). */
  sendAwareness () {
    const enc = this._encoder(MSG_AWARENESS)
    encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [this.doc.clientID]))
    this._send(enc)
  }

  /** Send a fresh SyncStep1; resolves on the next SyncStep2, i.e. after the server has
   * worked through everything this connection sent before (servers handle one
   * connection's messages in order). */
  roundTrip (timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('round trip timeout')), timeoutMs)
      const handler = (data) => {
        const dec = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.length))
        if (this.flavor === 'hocuspocus') decoding.readVarString(dec)
        const type = decoding.readVarUint(dec)
        if ((type === MSG_SYNC || type === MSG_HOCUS_SYNC_REPLY) && decoding.readVarUint(dec) === 1) {
          clearTimeout(timer)
          this.ws.off('message', handler)
          resolve()
        }
      }
      this.ws.on('message', handler)
      const enc = this._encoder(MSG_SYNC)
      syncProtocol.writeSyncStep1(enc, this.doc)
      this._send(enc)
    })
  }

  bufferedAmount () {
    return this.ws ? this.ws.bufferedAmount : 0
  }

  close () {
    if (this.awareness) this.awareness.destroy()
    if (this.ws) this.ws.close()
    this.doc.destroy()
  }
}

/**
 * Connect many clients with bounded concurrency; every connect has its own
 * deadline. The first client of each room connects before the others:
 * pycrdt-websocket 0.16 fails one of two connections that race to create the
 * same room ("YRoom already running"), and a benchmark should measure load,
 * not that race.
 */
export async function connectAll (clients, concurrency = 25, timeoutMs = 30000) {
  const seen = new Set()
  const first = []
  const rest = []
  for (const c of clients) {
    if (seen.has(c.room)) rest.push(c)
    else { seen.add(c.room); first.push(c) }
  }
  for (const batch of [first, rest]) {
    let next = 0
    const worker = async () => {
      while (next < batch.length) await batch[next++].connect(timeoutMs)
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, batch.length) }, worker))
  }
}

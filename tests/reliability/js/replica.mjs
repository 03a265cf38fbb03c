// A Yjs (JS) replica for the stateful test, driven over stdin/stdout with JSON lines.
// It speaks the plain y-websocket protocol with the server's opt-in "saved" ack, keeps
// its document across connections, and answers the server's SyncStep1 with what the
// server lacks (the resend on reconnect), exactly like the Python replica beside it.
// Commands: {op, ...} -> one JSON line {ok: true, ...} or {ok: false, error}.
import { createRequire } from 'node:module'
import readline from 'node:readline'

const require = createRequire(new URL('../../interop/package.json', import.meta.url))
const Y = require('yjs')
const syncProtocol = require('y-protocols/sync')
const encoding = require('lib0/encoding')
const decoding = require('lib0/decoding')
const WebSocket = require('ws')

const MESSAGE_SYNC = 0
const MESSAGE_SAVED = 100
const doc = new Y.Doc()
const history = []
let ws = null
let sent = 0
let saved = 0
let step2 = 0
const waiters = new Set()

function changed () { for (const w of [...waiters]) w() }

function send (bytes) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(bytes)
    sent++
  }
}

doc.on('update', (update, origin) => {
  if (origin === 'remote') return
  history.push(Buffer.from(update).toString('base64'))
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MESSAGE_SYNC)
  syncProtocol.writeUpdate(enc, update)
  send(encoding.toUint8Array(enc))
})

function onMessage (data) {
  const dec = decoding.createDecoder(new Uint8Array(data))
  const type = decoding.readVarUint(dec)
  if (type === MESSAGE_SAVED) {
    saved = Math.max(saved, decoding.readVarUint(dec))
  } else if (type === MESSAGE_SYNC) {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MESSAGE_SYNC)
    const kind = syncProtocol.readSyncMessage(dec, enc, doc, 'remote')
    if (kind === syncProtocol.messageYjsSyncStep2) step2++
    if (encoding.length(enc) > 1) send(encoding.toUint8Array(enc)) // our SyncStep2
  }
  changed()
}

function connect (url) {
  disconnect()
  sent = saved = step2 = 0
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url + (url.includes('?') ? '&' : '?') + 'ack=1')
    socket.binaryType = 'nodebuffer'
    socket.on('message', onMessage)
    socket.on('close', changed)
    socket.once('error', reject)
    socket.once('open', () => {
      ws = socket
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, MESSAGE_SYNC)
      syncProtocol.writeSyncStep1(enc, doc)
      socket.send(encoding.toUint8Array(enc))
      resolve()
    })
  })
}

function disconnect () {
  if (ws) { ws.removeAllListeners('message'); ws.terminate(); ws = null }
}

function waitFor (condition, ms = 20000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) { waiters.delete(check); clearTimeout(timer); resolve() } else if (!ws || ws.readyState !== WebSocket.OPEN) {
        waiters.delete(check); clearTimeout(timer); reject(new Error('connection lost while waiting'))
      }
    }
    const timer = setTimeout(() => { waiters.delete(check); reject(new Error('deadline')) }, ms)
    waiters.add(check)
    check()
  })
}

const text = () => doc.getText('t')
const ops = {
  connect: ({ url }) => connect(url),
  disconnect: () => disconnect(),
  insert_text: ({ where, word }) => { text().insert(Math.floor(where * text().length), word) },
  delete_text: ({ where, length }) => {
    const start = Math.floor(where * text().length)
    if (start < text().length) text().delete(start, Math.min(text().length - start, length))
  },
  push: ({ value }) => { doc.getArray('a').push([value]) },
  set_key: ({ key, value }) => { doc.getMap('m').set(key, value) },
  nested: ({ key, value }) => {
    doc.transact(() => {
      const array = doc.getArray('a')
      for (const item of array.toArray()) {
        if (item instanceof Y.Map) { item.set(key, value); return }
      }
      const map = new Y.Map()
      map.set(key, value)
      const list = new Y.Array()
      list.push([value])
      map.set('list', list)
      array.push([map])
    })
  },
  redeliver: ({ update }) => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MESSAGE_SYNC)
    syncProtocol.writeUpdate(enc, Buffer.from(update, 'base64'))
    send(encoding.toUint8Array(enc))
  },
  settle: async () => {
    await waitFor(() => sent > 0 && saved >= sent)
    const before = step2
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(enc, doc)
    ws.send(encoding.toUint8Array(enc))
    await waitFor(() => step2 > before)
  },
  history: () => ({ history }),
  state: () => ({
    content: { t: text().toString(), a: doc.getArray('a').toJSON(), m: doc.getMap('m').toJSON() },
    clocks: Object.fromEntries([...Y.decodeStateVector(Y.encodeStateVector(doc))].map(([k, v]) => [String(k), v]))
  }),
  quit: () => { disconnect(); setImmediate(() => process.exit(0)) }
}

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  const command = JSON.parse(line)
  try {
    const result = await ops[command.op](command)
    process.stdout.write(JSON.stringify({ ok: true, ...(result || {}) }) + '\n')
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error) }) + '\n')
  }
}

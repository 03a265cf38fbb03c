// Documents over ONE @hocuspocus/provider socket (HocuspocusProviderWebsocket + one
// HocuspocusProvider per document), driven by JSON commands on stdin. Provider events
// (authenticated, authenticationFailed, close, stateless) are printed as they happen;
// every command answers with one line `{"event": "<cmd>", ...}` or fails the process.
//
// args: --url=ws://HOST:PORT/hocuspocus --docs=a,b,c | --prefix=doc- --count=N [--token=T]
import readline from 'node:readline'
import WebSocket from 'ws'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import { Y, args, emit, fail, hex, waitFor } from './lib.mjs'

const DEADLINE_MS = Number(args().deadline ?? 15000)
const options = args()
const names = options.docs
  ? options.docs.split(',')
  : Array.from({ length: Number(options.count) }, (_, i) => `${options.prefix}${i}`)

const socket = new HocuspocusProviderWebsocket({ url: options.url, WebSocketPolyfill: WebSocket })
const providers = new Map()

const open = (name) => {
  const doc = new Y.Doc()
  const provider = new HocuspocusProvider({ websocketProvider: socket, name, document: doc, token: options.token ?? '' })
  provider.on('authenticated', ({ scope }) => emit({ event: 'authenticated', doc: name, scope }))
  provider.on('authenticationFailed', ({ reason }) => emit({ event: 'authenticationFailed', doc: name, reason }))
  provider.on('close', ({ event }) => emit({ event: 'close', doc: name, code: event.code, reason: String(event.reason ?? '') }))
  provider.on('stateless', ({ payload }) => emit({ event: 'stateless', doc: name, payload }))
  provider.attach()
  providers.set(name, provider)
}
for (const name of names) open(name)

const selected = (docs) => (docs === undefined || docs === 'all' ? [...providers.keys()] : docs.map((d) => (typeof d === 'number' ? names[d] : d)))
const each = (docs, f) => Promise.all(selected(docs).map((name) => f(providers.get(name), name)))
const onDoc = (provider) => [[provider.document, 'update'], [provider, 'synced'], [provider, 'unsyncedChanges'], [provider, 'awarenessChange']]

const snapshot = (provider) => ({
  map: provider.document.getMap('map').toJSON(),
  text: provider.document.getText('text').toJSON(),
  html: provider.document.getXmlFragment('default').toString(),
  state_vector: hex(Y.encodeStateVector(provider.document)),
  unsynced: provider.unsyncedChanges
})

const sorted = (object) => Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : 1)))

const presenceNames = (provider) => [...provider.awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean)

const commands = {
  wait_synced: ({ docs }) => each(docs, (p, n) => waitFor(`${n} synced`, () => p.synced, DEADLINE_MS, onDoc(p))),
  set: ({ docs, key, value }) => each(docs, (p) => p.document.getMap('map').set(key, value)),
  text: ({ docs, insert }) => each(docs, (p) => { const t = p.document.getText('text'); t.insert(t.length, insert) }),
  wait_saved: ({ docs }) => each(docs, (p, n) => waitFor(`${n} saved`, () => p.unsyncedChanges === 0, DEADLINE_MS, onDoc(p))),
  wait_map: ({ docs, map }) => each(docs, (p, n) => waitFor(`${n} map ${JSON.stringify(map)}`, () => JSON.stringify(sorted(p.document.getMap('map').toJSON())) === JSON.stringify(sorted(map)), DEADLINE_MS, onDoc(p))
    .catch((error) => { throw new Error(`${error.message}; holds: ${JSON.stringify(p.document.getMap('map').toJSON())}`) })),
  wait_keys: ({ docs, keys }) => each(docs, (p, n) => waitFor(`${n} keys ${keys}`, () => keys.every((k) => p.document.getMap('map').has(k)), DEADLINE_MS, onDoc(p))),
  snapshot: async ({ docs }) => ({ docs: Object.fromEntries(selected(docs).map((n) => [n, snapshot(providers.get(n))])) }),
  presence: ({ docs, name }) => each(docs, (p) => p.setAwarenessField('user', { name })),
  wait_presence: ({ docs, names: wanted }) => each(docs, (p, n) =>
    waitFor(`${n} presence ${wanted}`, () => wanted.every((w) => presenceNames(p).includes(w)), DEADLINE_MS, onDoc(p))
      .catch((error) => { throw new Error(`${error.message}; present: ${presenceNames(p)}`) })),
  stateless: ({ docs, payload }) => each(docs, (p) => p.sendStateless(payload)),
  close_doc: ({ docs }) => each(docs, (p, n) => { p.destroy(); providers.delete(n) }),
  raw: ({ docs, hex: body }) => each(docs, (p, n) => {
    const name = Buffer.from(n, 'utf8')
    const prefix = Buffer.concat([Buffer.from([name.length]), name]) // names under 128 bytes
    socket.send(new Uint8Array(Buffer.concat([prefix, Buffer.from(body, 'hex')])))
  }),
  exit: () => process.exit(0)
}

const lines = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  const command = JSON.parse(line)
  queue = queue.then(async () => {
    const handler = commands[command.cmd]
    if (!handler) fail(`unknown command ${command.cmd}`)
    const result = await handler(command)
    emit({ event: command.cmd, ...(result && !Array.isArray(result) ? result : {}) })
  }).catch((error) => fail(error && error.stack ? error.stack : String(error)))
})

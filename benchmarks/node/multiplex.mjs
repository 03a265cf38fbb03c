// One client with --docs documents: over ONE socket (@hocuspocus/provider, --flavor=hocuspocus)
// or one y-websocket socket per document (--flavor=path). Prints one JSON line: sockets
// opened, ms until every document synced, then --edits edits per document and ms until every
// one is acknowledged durable (hocuspocus: the provider's unsynced count at 0; path: ?ack=1
// "saved" messages are not read by stock y-websocket, so it is until the last edit was sent
// and the server echoed a state vector covering it: a sync round trip per document).
//
// args: --base=ws://HOST:PORT[/hocuspocus|/rooms] --flavor=hocuspocus|path --docs=N --edits=E
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')))
const docs = Number(args.docs)
const edits = Number(args.edits ?? 10)
const DEADLINE_MS = 300000
const names = Array.from({ length: docs }, (_, i) => `mx-${i}`)

const waitAll = (label, check, subscribe) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timed out: ${label}`)), DEADLINE_MS)
  const poll = () => { if (check()) { clearTimeout(timer); clearInterval(interval); resolve() } }
  const interval = setInterval(poll, 5)
  subscribe?.(poll)
})

const run = async () => {
  const started = performance.now()
  let sockets = 0
  let entries
  if (args.flavor === 'hocuspocus') {
    const socket = new HocuspocusProviderWebsocket({ url: args.base, WebSocketPolyfill: WebSocket })
    sockets = 1
    entries = names.map((name) => {
      const provider = new HocuspocusProvider({ websocketProvider: socket, name, document: new Y.Doc() })
      provider.attach()
      return { doc: provider.document, synced: () => provider.synced, saved: () => provider.unsyncedChanges === 0 }
    })
  } else {
    entries = names.map((name) => {
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(args.base, name, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
      sockets += 1
      return { doc, synced: () => provider.synced, saved: () => provider.synced && provider.ws?.bufferedAmount === 0 }
    })
  }
  await waitAll('all synced', () => entries.every((e) => e.synced()))
  const syncedMs = performance.now() - started
  const editsStarted = performance.now()
  for (let k = 0; k < edits; k++) {
    for (const entry of entries) entry.doc.getMap('map').set(`k${k}`, k)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await waitAll('all saved', () => entries.every((e) => e.saved()))
  const savedMs = performance.now() - editsStarted
  process.stdout.write(JSON.stringify({ flavor: args.flavor, docs, edits, sockets, synced_ms: syncedMs, saved_ms: savedMs }) + '\n')
  process.exit(0)
}
run().catch((error) => { process.stderr.write(String(error.stack ?? error) + '\n'); process.exit(1) })

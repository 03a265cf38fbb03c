// A @hocuspocus/provider that types without pause (map key `k<i>`, one edit every few ms)
// and prints {"saved": i} whenever the provider counts no unsynced change: by then every
// edit up to k<i> was acknowledged. Runs until killed.
//
// args: --url=ws://HOST:PORT/hocuspocus --room=R
import WebSocket from 'ws'
import { HocuspocusProvider } from '@hocuspocus/provider'
import { Y, args, emit, sleep } from './lib.mjs'

const { url, room } = args()
const doc = new Y.Doc()
const provider = new HocuspocusProvider({ url, name: room, document: doc, WebSocketPolyfill: WebSocket })
let written = -1
let reported = -1
provider.on('unsyncedChanges', ({ number }) => {
  if (number === 0 && written > reported) {
    reported = written
    emit({ saved: written })
  }
})
provider.on('synced', async () => {
  while (true) {
    written += 1
    doc.getMap('map').set(`k${written}`, written)
    await sleep(2 + (written % 5))
  }
})

// A fresh client: joins a room, waits for the first sync and prints what it received.
//
// args: --url=ws://HOST:PORT/rooms --room=R
import { args, connect, emit, run, snapshot, waitSynced } from './lib.mjs'

run(async () => {
  const { url, room } = args()
  const { doc, provider } = connect(url, room)
  await waitSynced(provider, 20000)
  emit(snapshot(doc))
})

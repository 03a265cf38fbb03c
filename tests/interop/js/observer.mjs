// Prints every item that arrives in the room's `list` from the server, one JSON line each,
// until killed.
//
// args: --url=ws://HOST:PORT/rooms --room=R
import { args, connect, emit, run, waitSynced } from './lib.mjs'

run(async () => {
  const { url, room } = args()
  const { doc, provider } = connect(url, room)
  doc.getArray('list').observe((event) => {
    for (const delta of event.changes.delta) {
      if (delta.insert) emit({ event: 'seen', items: delta.insert })
    }
  })
  await waitSynced(provider, 20000)
  emit({ event: 'ready' })
  await new Promise(() => {})
})

// Streams numbered items into the room's `list` until killed, one transaction each.
//
// args: --url=ws://HOST:PORT/rooms --room=R --name=W
import { args, connect, emit, run, sleep, waitSynced } from './lib.mjs'

run(async () => {
  const { url, room, name } = args()
  const { doc, provider } = connect(url, room)
  await waitSynced(provider, 20000)
  emit({ event: 'ready' })
  const list = doc.getArray('list')
  for (let k = 0; ; k++) {
    list.push([`${name}-${k}`])
    await sleep(2)
  }
})

// A stock y-websocket client in a room shared with other kinds of client: announces its
// presence as --name, sets map[--name], waits until the map holds every --expect key and
// presence shows every --expect name, then prints its snapshot and the names it sees, and stays until killed.
//
// args: --url=ws://HOST:PORT/rooms --room=R --name=N --expect=a,b,c
import { args, connect, emit, run, snapshot, waitFor, waitSynced } from './lib.mjs'

const DEADLINE_MS = 45000

run(async () => {
  const { url, room, name, expect } = args()
  const wanted = expect.split(',')
  const { doc, provider, awareness } = connect(url, room)
  awareness.setLocalStateField('user', { name })
  await waitSynced(provider, DEADLINE_MS)
  doc.getMap('map').set(name, true)
  const names = () => [...awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean)
  await waitFor('every key and presence', () =>
    wanted.every((w) => doc.getMap('map').has(w) && names().includes(w)),
  DEADLINE_MS, [[doc, 'update'], [awareness, 'change']])
  emit({ ...snapshot(doc), names: names() })
  await new Promise(() => {}) // stays in the room (and in its presence) until killed
})

// Presence roles, driven line by line from Python.
//
// --role=holder: sets a local awareness state, prints {"event": "ready"}, then on the stdin
//   line "disconnect" (y-websocket's goodbye) or "close-socket" (a bare close frame) closes
//   and prints {"event": "closed"}; otherwise it stays until killed.
// --role=watcher --name=N: prints {"event": "seen"} when a peer with user.name N appears and
//   {"event": "removed"} when that peer's state is gone, then exits.
// args: --url=ws://HOST:PORT/rooms --room=R --name=N
import readline from 'node:readline'
import { args, connect, emit, run, waitFor, waitSynced } from './lib.mjs'

const DEADLINE_MS = 20000

const holder = async (url, room, name) => {
  const { doc, provider, awareness } = connect(url, room)
  awareness.setLocalState({ user: { name, color: '#e91e63' }, typing: true })
  await waitSynced(provider, DEADLINE_MS)
  emit({ event: 'ready', client_id: doc.clientID })
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const command = line.trim()
    if (command === 'disconnect') {
      // y-websocket's own goodbye: a null awareness state, then the close.
      provider.disconnect()
    } else if (command === 'close-socket') {
      // Only a WebSocket close frame, no goodbye message: the server must clear the state.
      provider.shouldConnect = false
      provider.ws.close(1000)
    } else {
      continue
    }
    emit({ event: 'closed' })
    await new Promise(() => {}) // stay alive: the close alone must clear the state
  }
}

const watcher = async (url, room, name) => {
  const { provider, awareness } = connect(url, room)
  await waitSynced(provider, DEADLINE_MS)
  const peerWithName = () => {
    for (const [client, state] of awareness.getStates()) {
      if (client !== awareness.clientID && state.user && state.user.name === name) return [client, state]
    }
    return null
  }
  const sources = [[awareness, 'change']]
  await waitFor(`a peer named ${name}`, () => peerWithName() !== null, DEADLINE_MS, sources)
  const [client, state] = peerWithName()
  emit({ event: 'seen', client_id: client, state })
  // Long enough for a slow CI machine, shorter than the 30 s after which y-protocols itself
  // drops states that are not renewed: the removal must come from the server.
  await waitFor(`${name}'s state to be removed`, () => peerWithName() === null, 15000, sources)
  emit({ event: 'removed', client_id: client })
}

run(async () => {
  const { url, room, role, name } = args()
  if (role === 'holder') await holder(url, room, name)
  else await watcher(url, room, name)
})

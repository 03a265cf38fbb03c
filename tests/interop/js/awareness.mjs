// Presence roles, driven line by line from Python.
//
// --role=holder: sets a local awareness state, prints {"event": "ready"}, then obeys stdin:
//   "disconnect"   y-websocket's own goodbye (provider.disconnect())     -> {"event": "closed"}
//   "close-socket" a bare close frame, no goodbye, no reconnect          -> {"event": "closed"}
//   "drop"         a bare close frame; the provider reconnects by itself -> {"event": "reconnected"}
//   "stop-typing"  changes the local state (typing: false)               -> {"event": "updated"}
// --role=watcher --name=N [--reappear=1]: prints {"event": "seen"} when a peer with user.name N
//   appears and {"event": "removed"} when its state is gone; with --reappear, then waits for
//   that peer to come back with typing false and prints {"event": "seen again"}. Then exits.
// --role=peer --name=N --peer=P: sets its own state (user.name N) like a holder, prints
//   {"event": "seen"} when P's state appears, then obeys the holder's stdin commands.
// args: --url=ws://HOST:PORT/rooms --room=R --name=N
import readline from 'node:readline'
import { args, connect, emit, run, waitFor, waitSynced } from './lib.mjs'

const DEADLINE_MS = 20000
// Shorter than the 15 s after which y-protocols renews a local state by itself (and the 30 s
// after which it drops a silent peer), so what the watcher sees comes from the server relaying
// the holder's own changes, not from timers.
const PRESENCE_DEADLINE_MS = 10000

const holder = async (url, room, name, peer) => {
  const { doc, provider, awareness } = connect(url, room)
  awareness.setLocalState({ user: { name, color: '#e91e63' }, typing: true })
  await waitSynced(provider, DEADLINE_MS)
  emit({ event: 'ready', client_id: doc.clientID })
  if (peer !== undefined) {
    const found = () => findPeer(awareness, peer)
    await waitFor(`a peer named ${peer}`, () => found() !== null, PRESENCE_DEADLINE_MS, [[awareness, 'change']])
    emit({ event: 'seen', client_id: found()[0], state: found()[1] })
  }
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const command = line.trim()
    if (command === 'disconnect') {
      provider.disconnect()
      emit({ event: 'closed' })
    } else if (command === 'close-socket') {
      provider.shouldConnect = false
      provider.ws.close(1000)
      emit({ event: 'closed' })
    } else if (command === 'drop') {
      provider.ws.close(1000)
      await waitFor('the dropped socket to close', () => !provider.wsconnected, DEADLINE_MS,
        [[provider, 'status']])
      await waitSynced(provider, DEADLINE_MS)
      emit({ event: 'reconnected' })
    } else if (command === 'stop-typing') {
      awareness.setLocalStateField('typing', false)
      emit({ event: 'updated' })
    }
  }
}

/** [client id, state] of another client whose user.name is `name`, or null. */
const findPeer = (awareness, name) => {
  for (const [client, state] of awareness.getStates()) {
    if (client !== awareness.clientID && state.user && state.user.name === name) return [client, state]
  }
  return null
}

const watcher = async (url, room, name, reappear) => {
  const { provider, awareness } = connect(url, room)
  await waitSynced(provider, DEADLINE_MS)
  const peerWithName = () => findPeer(awareness, name)
  const sources = [[awareness, 'change']]
  await waitFor(`a peer named ${name}`, () => peerWithName() !== null, PRESENCE_DEADLINE_MS, sources)
  const [client, state] = peerWithName()
  emit({ event: 'seen', client_id: client, state })
  await waitFor(`${name}'s state to be removed`, () => peerWithName() === null, PRESENCE_DEADLINE_MS, sources)
  emit({ event: 'removed', client_id: client })
  if (reappear) {
    const back = () => peerWithName() !== null && peerWithName()[1].typing === false
    await waitFor(`${name} to come back with a new state`, back, PRESENCE_DEADLINE_MS, sources)
    emit({ event: 'seen again', client_id: peerWithName()[0], state: peerWithName()[1] })
  }
}

run(async () => {
  const { url, room, role, name, peer, reappear } = args()
  if (role === 'holder') await holder(url, room, name)
  else if (role === 'peer') await holder(url, room, name, peer)
  else await watcher(url, room, name, reappear === '1')
})

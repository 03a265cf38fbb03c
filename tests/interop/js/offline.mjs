// Two clients of one room: A goes offline (provider.disconnect()), both edit, A reconnects,
// and both must end with the union. A third client C watches: it must get B's edit but not
// A's while A is away. Prints the three snapshots and C's view while A was away.
//
// args: --url=ws://HOST:PORT/rooms --room=R
import { args, connect, emit, run, snapshot, waitDoc, waitFor, waitSynced } from './lib.mjs'

const DEADLINE_MS = 20000

const has = (doc, key) => doc.getMap('map').has(key)

run(async () => {
  const { url, room } = args()
  const a = connect(url, room)
  const b = connect(url, room)
  const c = connect(url, room) // a bystander: what the server relays while A is away
  await Promise.all([a, b, c].map(({ provider }) => waitSynced(provider, DEADLINE_MS)))

  a.doc.getText('text').insert(0, 'base')
  a.doc.getMap('map').set('base', true)
  await waitDoc('B to see the base edit', b.doc, () => has(b.doc, 'base'), DEADLINE_MS)

  a.provider.disconnect()
  await waitFor('A to be offline', () => !a.provider.wsconnected && a.provider.ws === null,
    DEADLINE_MS, [[a.provider, 'status']])
  a.doc.transact(() => {
    a.doc.getText('text').insert(4, ' +A offline')
    a.doc.getArray('list').push(['from A while offline'])
    a.doc.getMap('map').set('a', 'offline ✈')
  })
  b.doc.transact(() => {
    b.doc.getText('text').insert(0, 'B online: ')
    b.doc.getArray('list').push(['from B'])
    b.doc.getMap('map').set('b', 'online 🌐')
  })
  // A edited first; had its socket still been open, its update would reach C no later than
  // B's did.
  await waitDoc('C to see B\'s edit', c.doc, () => has(c.doc, 'b'), DEADLINE_MS)
  const whileAOffline = snapshot(c.doc)

  a.provider.connect()
  const union = (doc) => has(doc, 'a') && has(doc, 'b') && doc.getArray('list').length === 2
  await Promise.all([
    waitDoc('A to receive B\'s edits', a.doc, () => union(a.doc), DEADLINE_MS),
    waitDoc('B to receive A\'s offline edits', b.doc, () => union(b.doc), DEADLINE_MS)
  ])
  await waitDoc('C to see A\'s offline edits', c.doc, () => union(c.doc), DEADLINE_MS)
  emit({ a: snapshot(a.doc), b: snapshot(b.doc), c: snapshot(c.doc), while_a_offline: whileAOffline })
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PresenceBook, REJOIN_GRACE_MS } from '../../demo/presence-book.js'

/** @param {string} name @param {boolean} [self] */
const peer = (name, self = false) => ({ clientId: name.length, name, color: '#000', typing: false, self })
/** @param {import('../../demo/presence-book.js').ListedPeer[]} list */
const shown = (list) => list.map((p) => `${p.name}:${p.lastSeen === null ? 'online' : p.lastSeen}`)

test('peers seen online are kept as "last seen" at the moment the connection dropped', () => {
  let now = 1000
  const book = new PresenceBook(() => now)
  assert.deepEqual(shown(book.update([peer('me', true), peer('bob'), peer('ann')], true)), ['me:online', 'ann:online', 'bob:online'])
  now = 2000
  // y-websocket forgets the other clients when the socket closes: they are not gone for us.
  assert.deepEqual(shown(book.update([peer('me', true)], false)), ['me:online', 'ann:2000', 'bob:2000'])
  now = 9000
  assert.deepEqual(shown(book.update([peer('me', true)], false)), ['me:online', 'ann:2000', 'bob:2000'], 'the time stays that of the drop')
})

test('a socket that lingers while the browser is offline does not keep peers online', () => {
  let now = 1000
  const book = new PresenceBook(() => now)
  book.update([peer('me', true), peer('bob')], true)
  now = 1500
  assert.deepEqual(shown(book.update([peer('me', true), peer('bob')], false)), ['me:online', 'bob:1500'])
})

test('a peer who leaves while we are connected disappears', () => {
  const book = new PresenceBook(() => 1000)
  book.update([peer('me', true), peer('bob')], true)
  assert.deepEqual(shown(book.update([peer('me', true)], true)), ['me:online'])
})

test('after reconnecting, returning peers are online again and absent ones go after the grace period', () => {
  let now = 1000
  const book = new PresenceBook(() => now)
  book.update([peer('me', true), peer('bob'), peer('ann')], true)
  now = 2000
  book.update([peer('me', true)], false)
  now = 3000
  assert.deepEqual(shown(book.update([peer('me', true)], true)), ['me:online', 'ann:2000', 'bob:2000'], 'presence not in yet')
  assert.deepEqual(shown(book.update([peer('me', true), peer('bob')], true)), ['me:online', 'ann:2000', 'bob:online'])
  now = 3000 + REJOIN_GRACE_MS
  assert.deepEqual(shown(book.update([peer('me', true), peer('bob')], true)), ['me:online', 'bob:online'])
})

test('a renamed self is not remembered under the old name', () => {
  const book = new PresenceBook(() => 1000)
  book.update([peer('me', true)], false)
  assert.deepEqual(shown(book.update([peer('new-me', true)], false)), ['new-me:online'])
})

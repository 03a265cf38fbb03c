/**
 * connectRoom against the real server process (Node `ws` as the WebSocket, fake-indexeddb as
 * IndexedDB). These check what the status promises: "saved" only after the server's durable ack,
 * queued changes counted while offline and across a reload, and nothing lost over a restart.
 */
import 'fake-indexeddb/auto'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { connectRoom } from '../../src/connect.js'
import { addMessage, readMessages } from '../../demo/model.js'
import { startServer, makeDataDir, removeDataDir } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir
/** @type {Array<import('../../src/connect.js').Room>} */
const opened = []
let roomCounter = 0

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir })
})

after(async () => {
  await Promise.all(opened.map((room) => room.destroy()))
  await server.stop()
  await removeDataDir(dataDir)
})

/** @param {Partial<import('../../src/connect.js').ConnectOptions> & { room: string }} options */
function open (options) {
  const room = connectRoom({
    url: server.wsUrl,
    WebSocket,
    persist: false,
    backoff: { minDelay: 50, maxDelay: 500 },
    ...options
  })
  opened.push(room)
  return room
}

const texts = (/** @type {Y.Doc} */ doc) => readMessages(doc).map((m) => m.text)
const uniqueRoom = () => `client-test-${process.pid}-${++roomCounter}`

/** @param {string} room */
async function serverDoc (room) {
  const response = await fetch(`${server.httpUrl}/v1/rooms/${encodeURIComponent(room)}/state`)
  assert.equal(response.status, 200)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
  return doc
}

test('two clients exchange messages both ways and each reaches "saved" with nothing pending', async () => {
  const name = uniqueRoom()
  const alice = open({ room: name, user: { name: 'alice' } })
  const bob = open({ room: name, user: { name: 'bob' } })
  await alice.status.until((s) => s.state === 'saved')
  await bob.status.until((s) => s.state === 'saved')
  addMessage(alice.doc, { user: 'alice', text: 'hi bob' })
  addMessage(bob.doc, { user: 'bob', text: 'hi alice' })
  await waitFor(() => texts(alice.doc).length === 2 && texts(bob.doc).length === 2, { what: 'both messages on both sides' })
  assert.deepEqual(texts(alice.doc), texts(bob.doc))
  const saved = await alice.status.until((s) => s.state === 'saved' && s.pending === 0)
  assert.ok(saved.seq > 0, 'the ack carries the room log position')
  assert.deepEqual(texts(await serverDoc(name)).sort(), ['hi alice', 'hi bob'])
})

test('a change is "synced" but not "saved" until its ack arrives, then pending drops to 0', async () => {
  const name = uniqueRoom()
  const alice = open({ room: name })
  await alice.status.until((s) => s.state === 'saved')
  /** @type {string[]} */
  const states = []
  alice.status.subscribe((s) => states.push(`${s.state}:${s.pending}`))
  addMessage(alice.doc, { user: 'alice', text: 'one' })
  await alice.status.until((s) => s.state === 'saved' && s.pending === 0)
  assert.ok(states.includes('synced:1'), `saw ${states.join(' ')}`)
})

test('edits made offline are counted as queued and all arrive after reconnecting', async () => {
  const name = uniqueRoom()
  const alice = open({ room: name })
  const bob = open({ room: name })
  await alice.status.until((s) => s.state === 'saved')
  alice.disconnect()
  for (const text of ['q1', 'q2', 'q3']) addMessage(alice.doc, { user: 'alice', text })
  assert.equal(alice.status.state, 'offline')
  assert.equal(alice.status.pending, 3)
  alice.connect()
  await alice.status.until((s) => s.state === 'saved' && s.pending === 0)
  await waitFor(() => texts(bob.doc).length === 3, { what: 'bob receives the queued messages' })
  assert.deepEqual(texts(bob.doc), ['q1', 'q2', 'q3'])
})

test('local edits and the queued count survive a reload, then sync', async () => {
  const name = uniqueRoom()
  const first = open({ room: name, persist: true, connect: false })
  await first.ready
  addMessage(first.doc, { user: 'alice', text: 'written offline 1' })
  addMessage(first.doc, { user: 'alice', text: 'written offline 2' })
  assert.equal(first.status.pending, 2)
  await waitFor(async () => (await first.persistence?.get('performer:pending')) === 2, { what: 'pending count stored' })
  await first.destroy()

  const second = open({ room: name, persist: true, connect: false })
  await second.ready
  assert.deepEqual(texts(second.doc), ['written offline 1', 'written offline 2'])
  assert.equal(second.status.pending, 2, 'the queue is still known after the reload')
  assert.equal(second.status.state, 'offline')
  second.connect()
  await second.status.until((s) => s.state === 'saved' && s.pending === 0)
  assert.deepEqual(texts(await serverDoc(name)), ['written offline 1', 'written offline 2'])
})

test('presence: peers see each other, and a client that leaves disappears', async () => {
  const name = uniqueRoom()
  const alice = open({ room: name, user: { name: 'alice', color: '#f00' } })
  const bob = open({ room: name, user: { name: 'bob', color: '#00f' } })
  /** @param {import('../../src/connect.js').Room} room */
  const names = (room) => [...room.awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean).sort()
  await waitFor(() => names(bob).join() === 'alice,bob', { what: 'bob sees alice' })
  alice.awareness.setLocalStateField('typing', true)
  await waitFor(() => [...bob.awareness.getStates().values()].some((s) => s.user?.name === 'alice' && s.typing), { what: 'typing flag' })
  await alice.destroy()
  await waitFor(() => names(bob).join() === 'bob', { what: 'alice gone from bob\'s presence' })
})

test('a server restart loses nothing: edits made while it is down are saved after it returns', async () => {
  const name = uniqueRoom()
  const restartDir = await makeDataDir()
  let own = await startServer({ dataDir: restartDir })
  const port = Number(new URL(own.httpUrl).port)
  const alice = connectRoom({ url: own.wsUrl, room: name, WebSocket, persist: false, backoff: { minDelay: 50, maxDelay: 300 } })
  opened.push(alice)
  try {
    addMessage(alice.doc, { user: 'alice', text: 'before restart' })
    await alice.status.until((s) => s.state === 'saved' && s.pending === 0)
    await own.stop()
    await alice.status.until((s) => s.state === 'offline' || s.state === 'connecting')
    addMessage(alice.doc, { user: 'alice', text: 'while down' })
    assert.ok(alice.status.pending >= 1)
    own = await startServer({ dataDir: restartDir, port })
    await alice.status.until((s) => s.state === 'saved' && s.pending === 0, 20000)
    const response = await fetch(`${own.httpUrl}/v1/rooms/${name}/state`)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
    assert.deepEqual(texts(doc), ['before restart', 'while down'])
  } finally {
    await alice.destroy()
    await own.stop()
    await removeDataDir(restartDir)
  }
})

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
import { connectRoom, replicaName } from '../../src/connect.js'
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

test('the local replica is named by server + room: ignoring query and trailing slash, never by room alone', () => {
  assert.equal(replicaName('ws://127.0.0.1:8080/rooms', 'lobby'), 'performer-sync:ws://127.0.0.1:8080/rooms/lobby')
  assert.equal(replicaName('ws://127.0.0.1:8080/rooms/?token=abc', 'lobby'), 'performer-sync:ws://127.0.0.1:8080/rooms/lobby')
  assert.notEqual(replicaName('wss://staging.example.com/rooms', 'lobby'), replicaName('wss://example.com/rooms', 'lobby'))
  assert.notEqual(replicaName('ws://127.0.0.1:8080/rooms', 'lobby'), replicaName('ws://127.0.0.1:8081/rooms', 'lobby'))
})

test('two servers with a room of the same name keep separate local replicas that never mix', async () => {
  const name = uniqueRoom()
  const otherDir = await makeDataDir()
  const other = await startServer({ dataDir: otherDir })
  try {
    const onFirst = open({ room: name, persist: true })
    addMessage(onFirst.doc, { user: 'alice', text: 'only on the first server' })
    await onFirst.status.until((s) => s.state === 'saved' && s.pending === 0)
    await onFirst.destroy()

    // Same browser storage, same room name, another server: starts empty and stays so.
    const onOther = open({ room: name, persist: true, url: other.wsUrl })
    await onOther.ready
    assert.deepEqual(texts(onOther.doc), [], 'nothing from the first server\'s replica')
    addMessage(onOther.doc, { user: 'bob', text: 'only on the other server' })
    await onOther.status.until((s) => s.state === 'saved' && s.pending === 0)
    await onOther.destroy()
    const otherState = new Y.Doc()
    Y.applyUpdate(otherState, new Uint8Array(await (await fetch(`${other.httpUrl}/v1/rooms/${name}/state`)).arrayBuffer()))
    assert.deepEqual(texts(otherState), ['only on the other server'])

    // Back on the first server, offline: its replica still has its own message and only that.
    const again = open({ room: name, persist: true, connect: false })
    await again.ready
    assert.deepEqual(texts(again.doc), ['only on the first server'])
    assert.deepEqual(texts(await serverDoc(name)), ['only on the first server'])
  } finally {
    await other.stop()
    await removeDataDir(otherDir)
  }
})

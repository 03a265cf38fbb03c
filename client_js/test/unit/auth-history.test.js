/**
 * Tokens and time travel through the library, against a real server started with a secret.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import WebSocket from 'ws'
import { connectRoom } from '../../src/connect.js'
import { fetchHistory, fetchDocAt, fetchVersions, nameVersion, restoreVersion } from '../../src/history.js'
import { addMessage, readMessages } from '../../demo/model.js'
import { startServer, makeDataDir, removeDataDir, performerBin } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'client-tests-secret-with-enough-bytes-0123456789'
/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir, extraArgs: ['--auth-secret', SECRET] })
})

after(async () => {
  await server.stop()
  await removeDataDir(dataDir)
})

/** @param {string} room @param {string[]} [extra] */
async function token (room, extra = []) {
  const { stdout } = await promisify(execFile)(performerBin, ['token', '--secret', SECRET, '--room', room, '--user', 'alice', ...extra], { timeout: 20000 })
  return stdout.trim()
}

/** @param {string} room @param {string | null} roomToken */
function open (room, roomToken) {
  return connectRoom({ url: server.wsUrl, room, token: roomToken, WebSocket, persist: false, backoff: { minDelay: 50, maxDelay: 200 } })
}

test('without a token the server refuses for good: status says why and no retry storm follows', async () => {
  const room = open('locked', null)
  let attempts = 0
  room.provider.on('status', ({ status }) => { if (status === 'connecting') attempts++ })
  try {
    const final = await room.status.until((s) => s.error !== null)
    assert.match(final.error ?? '', /4401/)
    assert.equal(room.status.state, 'offline')
    assert.equal(room.provider.shouldConnect, false, 'no reconnect scheduled after a 44xx close')
    assert.ok(attempts <= 1, `${attempts} connection attempts`)
  } finally {
    await room.destroy()
  }
})

test('a token for another room is refused with 4403', async () => {
  const room = open('locked', await token('some-other-room'))
  try {
    const final = await room.status.until((s) => s.error !== null)
    assert.match(final.error ?? '', /4403/)
  } finally {
    await room.destroy()
  }
})

test('with a token, edits are saved, and history shows each earlier state', async () => {
  const roomToken = await token('timeline')
  const room = open('timeline', roomToken)
  try {
    for (const text of ['one', 'two', 'three']) {
      addMessage(room.doc, { user: 'alice', text })
      await room.status.until((s) => s.state === 'saved' && s.pending === 0)
    }
    const http = { baseUrl: server.httpUrl, token: roomToken }
    const history = await fetchHistory(http, 'timeline', { limit: 2 }) // forces paging
    assert.ok(history.entries.length >= 3, `${history.entries.length} entries`)
    assert.equal(history.last_seq, history.entries[history.entries.length - 1].seq)
    const seqs = history.entries.map((e) => e.seq)
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'entries in log order, no duplicates across pages')
    assert.equal(new Set(seqs).size, seqs.length)
    /** @type {number[]} */
    const counts = []
    for (const seq of seqs) {
      const doc = await fetchDocAt(http, 'timeline', seq)
      const texts = readMessages(doc).map((m) => m.text)
      assert.deepEqual(texts, ['one', 'two', 'three'].slice(0, texts.length))
      counts.push(texts.length)
    }
    assert.deepEqual(counts.filter((n, i) => i === 0 || n !== counts[i - 1]).filter((n) => n > 0), [1, 2, 3])
    await assert.rejects(fetchDocAt({ baseUrl: server.httpUrl }, 'timeline', 1), /401/)
  } finally {
    await room.destroy()
  }
})

test('restore through the library with the room token: the room is the earlier seq again, live', async () => {
  const roomToken = await token('restore')
  const room = open('restore', roomToken)
  const http = { baseUrl: server.httpUrl, token: roomToken }
  try {
    addMessage(room.doc, { user: 'alice', text: 'keep' })
    const kept = await room.status.until((s) => s.state === 'saved' && s.pending === 0)
    addMessage(room.doc, { user: 'alice', text: 'drop' })
    await room.status.until((s) => s.state === 'saved' && s.pending === 0)
    await assert.rejects(restoreVersion({ baseUrl: server.httpUrl, token: await token('restore', ['--read-only']) }, 'restore', kept.seq), /403/)
    await assert.rejects(restoreVersion({ baseUrl: server.httpUrl }, 'restore', kept.seq), /401/)

    const restored = await restoreVersion(http, 'restore', kept.seq)
    assert.ok(restored.seq > kept.seq, `the restore is a new entry (${restored.seq})`)
    const texts = () => readMessages(room.doc).map((m) => m.text)
    await waitFor(() => texts().join() === 'keep', { timeoutMs: 10000, what: `the restore arriving through sync (have ${texts().join()})` })
    assert.deepEqual(readMessages(await fetchDocAt(http, 'restore', restored.seq)).map((m) => m.text), ['keep'])
    const history = await fetchHistory(http, 'restore')
    assert.equal(/** @type {any} */ (history.entries.find((e) => e.seq === restored.seq))?.restore_of, kept.seq)
  } finally {
    await room.destroy()
  }
})

test('named versions through the library with the room token: name the current seq, list it', async () => {
  const roomToken = await token('versions')
  const room = open('versions', roomToken)
  const http = { baseUrl: server.httpUrl, token: roomToken }
  try {
    addMessage(room.doc, { user: 'alice', text: 'release' })
    const kept = await room.status.until((s) => s.state === 'saved' && s.pending === 0)
    assert.deepEqual(await nameVersion(http, 'versions', 'good'), { name: 'good', seq: kept.seq })
    addMessage(room.doc, { user: 'alice', text: 'later' })
    await room.status.until((s) => s.state === 'saved' && s.pending === 0)
    assert.deepEqual((await fetchVersions(http, 'versions')).map((v) => [v.name, v.seq]), [['good', kept.seq]])
    await assert.rejects(nameVersion({ baseUrl: server.httpUrl }, 'versions', 'anonymous'), /401/)
  } finally {
    await room.destroy()
  }
})

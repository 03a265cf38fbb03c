/**
 * The demo's rules through the library, against a real server started with them: another
 * user's delete comes back, the status says why, and the client carries on.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import path from 'node:path'
import WebSocket from 'ws'
import { connectRoom } from '../../src/connect.js'
import { addMessage, messagesOf, readMessages, toggleReaction } from '../../demo/model.js'
import { startServer, makeDataDir, removeDataDir, performerBin, repoRoot } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'client-tests-secret-with-enough-bytes-0123456789'
const RULES = path.join(repoRoot, 'examples', 'chat-rules.toml')
/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir, extraArgs: ['--auth-secret', SECRET, '--rules', RULES] })
})

after(async () => {
  await server.stop()
  await removeDataDir(dataDir)
})

/** @param {string} room @param {string} user */
async function open (room, user) {
  const { stdout } = await promisify(execFile)(performerBin, ['token', '--secret', SECRET, '--room', room, '--user', user], { timeout: 20000 })
  return connectRoom({ url: server.wsUrl, room, token: stdout.trim(), WebSocket, persist: false, backoff: { minDelay: 50, maxDelay: 200 } })
}

test('deleting another user\'s message is undone and the status says why', async () => {
  const ann = await open('rules-delete', 'ann')
  const bo = await open('rules-delete', 'bo')
  try {
    await ann.status.until((s) => s.state === 'saved')
    await bo.status.until((s) => s.state === 'saved')
    const id = addMessage(ann.doc, { user: 'ann', text: 'hello' })
    await waitFor(() => readMessages(bo.doc).length === 1, { what: 'bo sees ann\'s message' })
    messagesOf(bo.doc).delete(0, 1)
    assert.equal(readMessages(bo.doc).length, 0)
    const refused = await bo.status.until((s) => s.rejected !== null)
    assert.equal(refused.rejected, 'rule: only the author can delete messages[0]')
    await waitFor(() => readMessages(bo.doc).length === 1, { what: 'the message comes back' })
    assert.equal(readMessages(bo.doc)[0].text, 'hello')
    toggleReaction(bo.doc, id, '👍', 'bo') // his own reaction: allowed
    await bo.status.until((s) => s.state === 'saved')
    await waitFor(() => JSON.stringify(readMessages(ann.doc)) === JSON.stringify(readMessages(bo.doc)), { what: 'converged' })
    assert.equal(ann.status.value.rejected, null)
  } finally {
    await ann.destroy()
    await bo.destroy()
  }
})

/**
 * The chat demo with its rules, in real headless Chromium against a real server started with
 * them: tab B deletes tab A's message from the console (as an attacker would); the message
 * comes back on both screens and B's says why.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import path from 'node:path'
import { launchBrowser } from '../helpers/browser.js'
import { startServer, makeDataDir, removeDataDir, performerBin, repoRoot } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/** @typedef {import('playwright-core').Page} Page */

const DEADLINE = 20000
const SECRET = 'e2e-rules-secret-with-enough-bytes-0123456789'
const RULES = path.join(repoRoot, 'examples', 'chat-rules.toml')
/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir
/** @type {import('playwright-core').Browser} */
let browser

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir, extraArgs: ['--auth-secret', SECRET, '--rules', RULES] })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) await removeDataDir(dataDir)
})

/** @param {string} room @param {string} user @returns {Promise<string>} */
async function token (room, user) {
  const { stdout } = await promisify(execFile)(performerBin, ['token', '--secret', SECRET, '--room', room, '--user', user], { timeout: 20000 })
  return stdout.trim()
}

/** @param {string} room @param {string} user @returns {Promise<Page>} */
async function openChat (room, user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } })
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  const query = new URLSearchParams({ room, user, token: await token(room, user) })
  await page.goto(`${server.httpUrl}/?${query}`)
  // the service worker in control, so the tab can reload offline
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined))
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: DEADLINE })
  await waitForStatus(page, 'saved')
  return page
}

/** @param {string} room @returns {Promise<number>} how many entries the room's log holds */
async function logLength (room) {
  const response = await fetch(`${server.httpUrl}/v1/rooms/${room}/history?limit=1000`,
    { headers: { Authorization: `Bearer ${await token(room, 'reader')}` } })
  const body = await response.json()
  return (Array.isArray(body) ? body : body.entries).length
}

/** @param {Page} page @param {string} words */
async function waitForStatus (page, words) {
  const status = page.getByTestId('connection-status')
  await waitFor(async () => (await status.textContent())?.includes(words),
    { timeoutMs: DEADLINE, what: `status "${words}" (now "${await status.textContent()}")` })
}

/** @param {Page} page @param {number} count @param {string} what */
async function waitForMessageCount (page, count, what) {
  await waitFor(async () => (await page.getByTestId('message').count()) === count,
    { timeoutMs: DEADLINE, what: `${what}: ${count} message(s)` })
}

test('tab B deleting tab A\'s message from the console: it comes back and B is told why', async () => {
  const a = await openChat('rules-two-tabs', 'ann')
  const b = await openChat('rules-two-tabs', 'bo')
  await a.getByTestId('message-input').fill('hello from ann')
  await a.getByTestId('send-button').click()
  await waitForMessageCount(b, 1, 'B sees A\'s message')
  await b.evaluate(() => {
    const doc = /** @type {any} */ (window).performer.doc
    doc.getArray('messages').delete(0, 1)
  })
  await waitForStatus(b, 'only the author can delete this message')
  await waitForMessageCount(b, 1, 'the message is back on B')
  await waitFor(async () => (await b.getByTestId('message').first().textContent())?.includes('hello from ann'),
    { timeoutMs: DEADLINE, what: 'B shows the restored text' })
  await waitForMessageCount(a, 1, 'A still has its message')
  await b.getByTestId('message-input').fill('and one from bo')
  await b.getByTestId('send-button').click()
  await waitForMessageCount(a, 2, 'B\'s own message reaches A')
})

test('an offline forbidden delete replayed from IndexedDB is undone once, without a loop', async () => {
  const room = 'rules-offline'
  const a = await openChat(room, 'ann')
  const b = await openChat(room, 'bo')
  await a.getByTestId('message-input').fill('keep me')
  await a.getByTestId('send-button').click()
  await waitForMessageCount(b, 1, 'B sees A\'s message')

  await b.context().setOffline(true)
  await waitForStatus(b, 'offline')
  await b.evaluate(() => /** @type {any} */ (window).performer.doc.getArray('messages').delete(0, 1))
  await waitForMessageCount(b, 0, 'B deleted it locally')
  await b.reload() // offline: the queued delete lives in IndexedDB only
  await waitForMessageCount(b, 0, 'still deleted after the offline reload')
  const before = await logLength(room)

  await b.context().setOffline(false)
  await waitForStatus(b, 'only the author can delete this message')
  await waitForMessageCount(b, 1, 'the message is back on B')
  await waitForStatus(b, 'saved')
  const undone = await logLength(room)
  assert.ok(undone <= before + 1, `one entry for the attempt and its undo (${before} -> ${undone})`)

  await b.reload() // online: IndexedDB now holds the undo too; replaying it refuses nothing
  await waitForStatus(b, 'saved')
  await waitForMessageCount(b, 1, 'B after an online reload')
  assert.doesNotMatch(await b.getByTestId('connection-status').textContent() ?? '', /undone/)
  // a reconnect's step 2 carries the replica's delete set: at most one (no-op) entry
  const settled = await logLength(room)
  assert.ok(settled <= undone + 1, `the online reload added ${settled - undone} entries`)
  await b.getByTestId('message-input').fill('bo is back')
  await b.getByTestId('send-button').click()
  await waitForMessageCount(a, 2, 'B\'s later message reaches A')
  await waitForStatus(b, 'saved')
  assert.equal(await logLength(room), settled + 1, 'exactly one more entry: nothing loops')
  assert.doesNotMatch(await b.getByTestId('connection-status').textContent() ?? '', /undone/)
})

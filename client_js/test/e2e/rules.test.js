/**
 * The chat demo with its rules, in real headless Chromium against a real server started with
 * them: tab B deletes tab A's message from the console (as an attacker would); the message
 * comes back on both screens and B's says why.
 */
import { test, before, after } from 'node:test'
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

/** @param {string} room @param {string} user @returns {Promise<Page>} */
async function openChat (room, user) {
  const { stdout } = await promisify(execFile)(performerBin, ['token', '--secret', SECRET, '--room', room, '--user', user], { timeout: 20000 })
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } })
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  const query = new URLSearchParams({ room, user, token: stdout.trim() })
  await page.goto(`${server.httpUrl}/?${query}`)
  await waitForStatus(page, 'saved')
  return page
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

/**
 * The operator console in real headless Chromium against the real server (JWT auth on), while Node Yjs clients
 * (y-websocket, as any app would use it) edit three rooms. Waits poll the page under a deadline.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { launchBrowser } from '../helpers/browser.js'
import { startServer, makeDataDir, removeDataDir, performerBin, repoRoot } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/** @typedef {import('playwright-core').Page} Page */

const SECRET = 'console-e2e-' + '0123456789abcdef'.repeat(4)
const DEADLINE = 20000
/** How soon a change must show in the rooms table (it polls every second; generous for a loaded machine). */
const LIVE_MS = 5000

/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir
/** @type {import('playwright-core').Browser} */
let browser
/** @type {{ doc: Y.Doc, provider: WebsocketProvider }[]} */
const clients = []
/** @type {Error[]} */
const pageErrors = []

/** @type {Map<string, string>} */
const tokens = new Map()

/** `performer token ...`, the real command (once per set of flags: each run starts Python). @param {string[]} flags */
function token (...flags) {
  const key = flags.join(' ')
  if (!tokens.has(key)) {
    tokens.set(key, execFileSync(performerBin, ['token', '--secret', SECRET, '--room', '*', ...flags], { cwd: repoRoot, encoding: 'utf8' }).trim())
  }
  return /** @type {string} */ (tokens.get(key))
}

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir, extraArgs: ['--auth-secret', SECRET] })
  browser = await launchBrowser()
})

after(async () => {
  for (const { provider, doc } of clients) { provider.destroy(); doc.destroy() }
  await browser?.close()
  await server?.stop()
  if (dataDir) await removeDataDir(dataDir)
  assert.deepEqual(pageErrors.map(String), [])
})

/**
 * A Node client in `room` as `user`, synced.
 * @param {string} room
 * @param {string} user
 */
async function nodeClient (room, user) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.wsUrl, room, doc, { WebSocketPolyfill: /** @type {any} */ (WebSocket), params: { token: token('--user', user) } })
  clients.push({ doc, provider })
  await waitFor(() => provider.synced, { timeoutMs: DEADLINE, what: `${user} synced in ${room}` })
  return { doc, items: doc.getArray('items'), provider }
}

/** @param {string} path @returns {Promise<any>} */
async function api (path) {
  const response = await fetch(server.httpUrl + path, { headers: { Authorization: `Bearer ${token('--user', 'ops', '--admin')}` } })
  const text = await response.text()
  assert.equal(response.status, 200, `${path}: ${text}`)
  return JSON.parse(text)
}

/** @param {string} room @param {number} seq */
async function waitDurable (room, seq) {
  await waitFor(async () => (await api(`/v1/rooms/${room}/json`)).seq >= seq, { timeoutMs: DEADLINE, what: `${room} at seq ${seq}` })
}

async function openConsole () {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  page.on('pageerror', (error) => pageErrors.push(error))
  const response = await page.goto(`${server.httpUrl}/console?token=${token('--user', 'ops', '--admin')}`)
  assert.equal(response?.status(), 200)
  return page
}

/**
 * A row's connection count and connected users, read from its cells.
 * @param {Page} page
 * @param {string} room
 */
async function rowOf (page, room) {
  const row = page.locator(`[data-testid="room-row"][data-room="${room}"]`)
  if ((await row.count()) !== 1) return null
  return {
    text: await row.textContent() ?? '',
    connections: await row.getByTestId('room-connections').textContent(),
    users: await row.getByTestId('room-users').textContent(),
    lastUser: await row.getByTestId('room-last-user').textContent()
  }
}

test('a non-admin token gets 403 on the console and its stats route; no token 401', async () => {
  for (const route of ['/console', '/v1/stats']) {
    const user = await fetch(`${server.httpUrl}${route}?token=${token('--user', 'eve')}`)
    assert.equal(user.status, 403, route)
    assert.equal((await fetch(server.httpUrl + route)).status, 401, route)
  }
})

test('the rooms table shows live connection counts and last users; a room page follows edits, travels, restores', async () => {
  const ann = await nodeClient('alpha', 'ann')
  const bob = await nodeClient('beta', 'bob')
  const cid = await nodeClient('beta', 'cid')
  const dan = await nodeClient('gamma', 'dan')
  ann.items.push(['a1'])
  bob.items.push(['b1'])
  dan.items.push(['g1'])
  await Promise.all([waitDurable('alpha', 1), waitDurable('beta', 1), waitDurable('gamma', 1)])

  const page = await openConsole()
  await waitFor(async () => {
    const [a, b, g] = await Promise.all(['alpha', 'beta', 'gamma'].map((room) => rowOf(page, room)))
    return a?.connections === '1' && a.users === 'ann' && a.lastUser === 'ann' && a.text.includes('alpha') &&
      b?.connections === '2' && b.users === 'bob, cid' && b.lastUser === 'bob' &&
      g?.connections === '1' && g.lastUser === 'dan'
  }, { timeoutMs: DEADLINE, what: 'three rooms with their connection counts, users and last users' })
  assert.equal(await page.getByTestId('room-row').count(), 3)

  // Live, without reloading: cid edits beta, a new client joins gamma.
  const edited = Date.now()
  cid.items.push(['c1'])
  const eve = await nodeClient('gamma', 'eve')
  await waitFor(async () => {
    const b = await page.locator('[data-room="beta"] [data-testid="room-last-user"]').textContent()
    const g = await page.locator('[data-room="gamma"] [data-testid="room-connections"]').textContent()
    return b === 'cid' && g === '2'
  }, { timeoutMs: LIVE_MS, what: 'beta last edited by cid, gamma with 2 connections' })
  console.log(`rooms table caught up ${Date.now() - edited} ms after the edit`)

  // Sort by connections (descending first) and filter by user.
  await page.getByRole('button', { name: /^Connections/ }).click()
  assert.equal(await page.getByTestId('room-row').first().getAttribute('data-room'), 'beta')
  await page.getByTestId('rooms-filter').fill('dan')
  await waitFor(async () => (await page.getByTestId('room-row').count()) === 1, { what: 'filter by user' })
  assert.equal(await page.getByTestId('room-row').first().getAttribute('data-room'), 'gamma')
  await page.getByTestId('rooms-filter').fill('')

  // The room page: the JSON tree updates as a client edits.
  await page.locator('[data-room="alpha"] a').click()
  const tree = page.getByTestId('json-tree')
  await waitFor(async () => (await tree.textContent())?.includes('"a1"'), { what: 'alpha content in the tree' })
  for (const word of ['a2', 'a3', 'a4']) ann.items.push([word])
  await waitFor(async () => (await tree.textContent())?.includes('"a4"'), { timeoutMs: LIVE_MS, what: 'the tree follows the edits' })
  await waitFor(async () => (await page.getByTestId('room-people').textContent())?.includes('ann · write · y-websocket'), { what: 'ann connected, with mode and kind' })

  // The timeline shows the edits by user.
  await waitFor(async () => (await page.getByTestId('timeline').textContent())?.includes('ann: 4 edits'), { what: 'timeline by user' })

  // Viewing seq K shows the content at K, as ?at=K says.
  const atTwo = await api('/v1/rooms/alpha/json?at=2')
  assert.deepEqual(atTwo.doc, { items: ['a1', 'a2'] })
  await page.getByTestId('at-seq').fill('2')
  await page.getByTestId('at-seq').dispatchEvent('change')
  await waitFor(async () => (await page.getByTestId('at-shown').getAttribute('data-seq')) === '2', { what: 'seq 2 shown' })
  const shown = await page.getByTestId('at-tree').locator('.leaf .value').allTextContents()
  assert.deepEqual(shown.map((v) => JSON.parse(v)), atTwo.doc.items)

  // The diff between two positions lists what the test changed.
  await page.getByTestId('diff-from').fill('2')
  await page.getByTestId('diff-to').fill('4')
  await page.getByTestId('diff-button').click()
  await waitFor(async () => (await page.getByTestId('diff-entry').count()) === 2, { what: 'two added items' })
  assert.deepEqual(await page.getByTestId('diff-entry').allTextContents(), ['added /items/2 "a3"', 'added /items/3 "a4"'])

  // Restore with a preview: the room goes back to seq 2 and the connected Node client converges.
  await page.getByTestId('restore-button').click()
  await waitFor(async () => (await page.getByTestId('restore-preview').getByTestId('diff-entry').count()) === 2, { what: 'restore preview' })
  assert.deepEqual(await page.getByTestId('restore-preview').getByTestId('diff-entry').allTextContents(), ['removed /items/2 "a3"', 'removed /items/3 "a4"'])
  await page.getByTestId('restore-confirm').click()
  await waitFor(async () => (await page.getByTestId('restore-result').count()) === 1, { what: 'restore result' })
  await waitFor(() => JSON.stringify(ann.items.toJSON()) === JSON.stringify(['a1', 'a2']), { timeoutMs: DEADLINE, what: `ann converges (has ${JSON.stringify(ann.items.toJSON())})` })
  assert.deepEqual((await api('/v1/rooms/alpha/json')).doc, atTwo.doc)
  await waitFor(async () => {
    const text = await tree.textContent()
    return text?.includes('"a2"') && !text.includes('"a3"')
  }, { timeoutMs: LIVE_MS, what: 'the tree shows the restored content' })

  // Named versions: create one, see it listed.
  await page.getByTestId('version-name').fill('before-launch')
  await page.getByTestId('version-create').click()
  await waitFor(async () => (await page.getByTestId('version-item').allTextContents()).some((t) => t.startsWith('before-launch')), { what: 'version listed' })
  assert.ok(eve)
})

test('the server panel charts the stats and shows settings without secrets; the table sorts from the keyboard', async () => {
  const page = await openConsole()
  await page.getByTestId('server-stats').locator('summary').first().click()
  const captions = page.getByTestId('server-stats').locator('figcaption')
  await waitFor(async () => (await captions.allTextContents()).some((t) => /^Connections: \d+$/.test(t)), { what: 'the connections chart' })
  await waitFor(async () => (await captions.allTextContents()).some((t) => /^Edits\/s: \d/.test(t)), { what: 'a rate from two samples' })
  const settings = await page.getByTestId('server-stats').locator('pre').textContent() ?? ''
  assert.match(settings, /"auth_secret": "\(set\)"/)
  assert.ok(!settings.includes(SECRET))
  const header = page.getByRole('button', { name: /^Room/ })
  await header.focus()
  // The table refreshes every second; the focused header must survive a refresh.
  const status = page.locator('section.rooms p.status')
  const before = await status.textContent()
  await waitFor(async () => (await status.textContent()) !== before, { what: 'a refresh of the rooms table' })
  await page.keyboard.press('Enter')
  await waitFor(async () => (await page.locator('th[aria-sort]').getAttribute('aria-sort')) === 'ascending', { what: 'sorted by name' })
  const names = await page.getByTestId('room-row').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-room')))
  assert.deepEqual(names, [...names].sort())
  await page.context().close()
})

test('a parked webhook room shows the reason, and the retry button unparks it', async () => {
  let answer = 500
  /** @type {string[]} */
  const delivered = []
  const receiver = http.createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => { body += chunk })
    request.on('end', () => {
      if (answer === 200) delivered.push(body)
      response.writeHead(answer).end()
    })
  })
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', () => resolve(undefined)))
  const port = /** @type {import('node:net').AddressInfo} */ (receiver.address()).port
  const hookedDir = await makeDataDir()
  const hooked = await startServer({
    dataDir: hookedDir,
    extraArgs: ['--webhook', `http://127.0.0.1:${port}/hook`, '--webhook-secret', 'hook-secret',
      '--webhook-retry', '0.00002', '--webhook-probe', '3600'] // the day-long schedule in ~1.5 s; no probe
  })
  try {
    const post = await fetch(`${hooked.httpUrl}/v1/rooms/orders/update`, {
      method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from(Y.encodeStateAsUpdate(withText('x')))
    })
    assert.equal(post.status, 200)
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } }) // a phone-sized screen
    const page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(error))
    await page.goto(`${hooked.httpUrl}/console`) // no auth: localhost may open it
    const parkedCell = page.locator('[data-room="orders"] [data-testid="room-parked"]')
    await waitFor(async () => (await parkedCell.count()) === 1 && (await parkedCell.textContent()) === 'webhook', { timeoutMs: DEADLINE, what: 'the rooms table shows the room parked' })
    await page.locator('[data-room="orders"] a').click()
    const reason = page.getByTestId('parked-reason')
    await waitFor(async () => (await reason.count()) === 1, { timeoutMs: DEADLINE, what: 'the parked reason' })
    assert.match(await reason.textContent() ?? '', /parked at seq 1\.\.1 after \d+ attempts: .*500/)
    answer = 200
    await page.getByTestId('retry-button').click()
    await waitFor(() => delivered.some((body) => JSON.parse(body).to_seq === 1), { timeoutMs: DEADLINE, what: 'the webhook delivered after retry' })
    await waitFor(async () => (await reason.count()) === 0 && (await page.getByTestId('delivery').textContent())?.includes('0 behind'), { timeoutMs: DEADLINE, what: 'the room shown unparked' })
    await context.close()
  } finally {
    await hooked.stop()
    receiver.close()
    await removeDataDir(hookedDir)
  }
})

/** @param {string} text @returns {Y.Doc} */
function withText (text) {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return doc
}

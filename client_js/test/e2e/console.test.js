/**
 * The operator console in real headless Chromium against the real server (JWT auth on, the chat demo's rules), while
 * Node Yjs clients (y-websocket, as any app would use it) edit rooms. Waits poll the page under a deadline.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import path from 'node:path'
import * as Y from 'yjs'
import { launchBrowser } from '../helpers/browser.js'
import { ConsoleKit, DEADLINE, postMessage, rowOf, timelineUsers } from '../helpers/console.js'
import { startServer, makeDataDir, removeDataDir, repoRoot } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/** @typedef {import('playwright-core').Page} Page */

const SECRET = 'console-e2e-' + '0123456789abcdef'.repeat(4)
const RULES = path.join(repoRoot, 'examples', 'chat-rules.toml')
/** How soon a change must show in the rooms table (it polls every second; generous for a loaded machine). */
const LIVE_MS = 5000

/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir
/** @type {import('playwright-core').Browser} */
let browser
/** @type {ConsoleKit} */
let kit

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir, extraArgs: ['--auth-secret', SECRET, '--rules', RULES] })
  browser = await launchBrowser()
  kit = new ConsoleKit({ secret: SECRET, browser })
})

after(async () => {
  kit?.close()
  await browser?.close()
  await server?.stop()
  if (dataDir) await removeDataDir(dataDir)
  assert.deepEqual(kit.pageErrors.map(String), [])
})

/** @param {string[]} flags */
const token = (...flags) => kit.token(...flags)
/** @param {string} room @param {string} user */
const nodeClient = (room, user) => kit.nodeClient(server, room, user)
/** @param {string} path */
const api = (path) => kit.api(server, path)
/** @param {string} room @param {number} seq */
const waitDurable = (room, seq) => kit.waitDurable(server, room, seq)
/** @param {{ width: number, height: number }} [viewport] */
const openConsole = (viewport) => kit.openConsole(server, viewport)

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
    page.on('pageerror', (error) => kit.pageErrors.push(error))
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

test('a Node client breaking a rule: the rooms table counts it, the timeline says who, by what and why; the chart zooms', async () => {
  const page = await openConsole()
  const ann = await nodeClient('chat', 'ann')
  const bo = await nodeClient('chat', 'bo')
  const calm = await nodeClient('chat-calm', 'ann')
  postMessage(calm, 'ann', 'nothing to refuse here')
  postMessage(ann, 'ann', 'hello')
  postMessage(ann, 'ann', 'again')
  await waitDurable('chat', 2)
  await waitFor(() => bo.messages.length === 2, { timeoutMs: DEADLINE, what: "bo has ann's messages" })
  await new Promise((resolve) => setTimeout(resolve, 2000)) // a gap: the chart's two ends hold different users
  postMessage(bo, 'bo', 'hi')
  bo.messages.delete(0, 1) // ann's message: only its author may delete it; the server undoes it
  await waitDurable('chat', 4)
  await waitFor(() => bo.messages.length === 3, { timeoutMs: DEADLINE, what: "ann's message back on bo's replica" })

  await waitFor(async () => (await rowOf(page, 'chat'))?.refusals === '1', { timeoutMs: LIVE_MS, what: 'the chat row counts one refusal' })
  await waitFor(async () => (await rowOf(page, 'chat-calm'))?.refusals === '0', { what: 'the calm room listed, no refusals' })
  await page.getByRole('button', { name: /^Refusals/ }).click()
  assert.equal(await page.getByTestId('room-row').first().getAttribute('data-room'), 'chat')
  assert.equal(await page.locator('th[aria-sort]').textContent(), 'Refusals ▼')

  await page.locator('[data-room="chat"] a').click()
  const refusal = page.getByTestId('timeline-refusal')
  await waitFor(async () => (await refusal.count()) === 1, { what: 'the refusal on the timeline' })
  assert.match(await refusal.textContent() ?? '', /^#4 bo refused by a rule: only the author can delete messages\[0\] · /)
  const history = await api('/v1/rooms/chat/history')
  assert.deepEqual(history.entries.filter((/** @type {any} */ e) => e.rejected).map((/** @type {any} */ e) => [e.seq, e.rejected]),
    [[4, { user: 'bo', by: 'rule', reason: 'rule: only the author can delete messages[0]' }]])
  assert.match(await page.locator('[data-testid="timeline-entry"].refused').textContent() ?? '', /^#4 bo · .* · bo refused by a rule/)

  // Zoom on the chart: drag across its last 40 %, then back to everything.
  const range = page.getByTestId('timeline-range')
  await waitFor(async () => (await timelineUsers(page)).join() === 'ann: 2 edits,bo: 2 edits', { what: 'both users before zooming' })
  const chart = page.getByTestId('timeline-chart')
  const box = await chart.boundingBox()
  assert.ok(box)
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2)
  await page.mouse.down()
  await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2, { steps: 5 })
  await page.mouse.up()
  await waitFor(async () => (await timelineUsers(page)).join() === 'bo: 2 edits', { what: 'only bo in the dragged span' })
  assert.equal(await range.getAttribute('data-zoomed'), 'true')
  assert.equal(await page.getByTestId('timeline-refusal').count(), 1)
  await page.getByTestId('timeline-reset').click()
  await waitFor(async () => (await range.getAttribute('data-zoomed')) === 'false' && (await timelineUsers(page)).length === 2, { what: 'everything again' })

  // The wheel zooms in where the pointer is.
  await page.mouse.move(box.x + 2, box.y + box.height / 2)
  await page.mouse.wheel(0, -200)
  await waitFor(async () => (await timelineUsers(page)).join() === 'ann: 2 edits', { what: 'the wheel zoomed in on ann\'s end' })
  await page.getByTestId('timeline-reset').click()

  // The keyboard: + zooms in around the middle (no edits there), ← and → move, 0 shows everything.
  await chart.focus()
  await page.keyboard.press('+')
  await waitFor(async () => (await range.getAttribute('data-count')) === '0', { what: 'the empty middle' })
  await page.keyboard.press('ArrowLeft')
  await waitFor(async () => (await timelineUsers(page)).join() === 'ann: 2 edits', { what: 'earlier: ann' })
  await page.keyboard.press('ArrowRight')
  await page.keyboard.press('ArrowRight')
  await waitFor(async () => (await timelineUsers(page)).join() === 'bo: 2 edits', { what: 'later: bo' })
  await page.keyboard.press('0')
  await waitFor(async () => (await range.getAttribute('data-zoomed')) === 'false', { what: 'reset from the keyboard' })
  await page.context().close()
})

/**
 * Tab through the page (up to `presses` times) and name each control that takes the focus.
 * @param {Page} page @param {number} presses @returns {Promise<string[]>}
 */
async function tabThrough (page, presses) {
  /** @type {string[]} */
  const reached = []
  await page.evaluate(() => { /** @type {HTMLElement | null} */ (document.activeElement)?.blur() })
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab')
    reached.push(await page.evaluate(() => {
      const el = /** @type {HTMLElement | null} */ (document.activeElement)
      if (!el || el === document.body) return ''
      return el.dataset.testid ?? el.getAttribute('aria-label') ?? el.textContent?.trim().slice(0, 40) ?? el.tagName
    }))
  }
  return reached
}

/** @param {Page} page the page's own width, and the rooms table's box (when there is one) */
function layout (page) {
  return page.evaluate(() => {
    const box = document.querySelector('.scroll')
    return {
      pageWidth: document.documentElement.scrollWidth,
      viewWidth: document.documentElement.clientWidth,
      boxScroll: box?.scrollWidth ?? 0,
      boxWidth: box?.clientWidth ?? 0,
      boxRight: box?.getBoundingClientRect().right ?? 0
    }
  })
}

test('on a phone-sized screen the page never scrolls sideways, the table scrolls in its box, and the keyboard reaches every control', async () => {
  const pat = await nodeClient('phone-room', 'pat')
  pat.items.push(['p1'])
  await waitDurable('phone-room', 1)
  const page = await openConsole({ width: 390, height: 844 })
  await waitFor(async () => (await rowOf(page, 'phone-room'))?.connections === '1', { what: 'the phone room listed' })
  const rooms = await layout(page)
  assert.ok(rooms.pageWidth <= rooms.viewWidth, `the page is ${rooms.pageWidth} px wide in a ${rooms.viewWidth} px screen`)
  assert.ok(rooms.boxScroll > rooms.boxWidth, 'the table is wider than its box (it scrolls there)')
  assert.ok(rooms.boxRight <= rooms.viewWidth, `the box ends at ${rooms.boxRight} px`)
  assert.ok(await page.locator('.scroll').evaluate((el) => { el.scrollLeft = 200; return el.scrollLeft > 0 }))

  const onRooms = await tabThrough(page, 25)
  for (const control of ['rooms-filter', 'Room', 'Connections', 'Refusals', 'phone-room']) {
    assert.ok(onRooms.some((name) => name.startsWith(control)), `${control} reachable by Tab (reached: ${onRooms.join(' | ')})`)
  }
  // Open the room from the keyboard.
  for (let i = 0; i < 40 && await page.evaluate(() => document.activeElement?.textContent) !== 'phone-room'; i++) await page.keyboard.press('Tab')
  await page.keyboard.press('Enter')
  await waitFor(async () => (await page.getByTestId('json-tree').textContent())?.includes('"p1"'), { what: 'the room page, opened from the keyboard' })
  await waitFor(async () => (await page.getByTestId('timeline-user').count()) === 1, { what: 'the timeline drawn' })
  const room = await layout(page)
  assert.ok(room.pageWidth <= room.viewWidth, `the room page is ${room.pageWidth} px wide in a ${room.viewWidth} px screen`)

  const onRoom = await tabThrough(page, 80)
  const controls = ['timeline-load', 'timeline-zoom-out', 'timeline-zoom-in', 'timeline-earlier', 'timeline-later', 'timeline-reset',
    'timeline-chart', 'at-slider', 'at-seq', 'restore-button', 'diff-from', 'diff-to', 'diff-button', 'version-name', 'version-create']
  const missing = controls.filter((control) => !onRoom.includes(control))
  assert.deepEqual(missing, [], `reached: ${onRoom.join(' | ')}`)
  await page.context().close()
})

/** @param {string} text @returns {Y.Doc} */
function withText (text) {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return doc
}

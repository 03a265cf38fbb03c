/**
 * The chat demo in real headless Chromium against the real server process.
 *
 * One server (fresh data directory) and one browser for the file; every test uses its own room. Waits poll the page
 * under a deadline (playwright-core has no `expect`), never sleep-then-assert.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as Y from 'yjs'
import { launchBrowser } from '../helpers/browser.js'
import { startServer, makeDataDir, removeDataDir, repoRoot } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'
import { readMessages, REACTIONS } from '../../demo/model.js'

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('playwright-core').BrowserContext} BrowserContext */

const DEADLINE = 20000
/** @type {import('../helpers/server.js').RunningServer} */
let server
/** @type {string} */
let dataDir
/** @type {import('playwright-core').Browser} */
let browser
/** @type {Error[]} */
const pageErrors = []

before(async () => {
  dataDir = await makeDataDir()
  server = await startServer({ dataDir })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) await removeDataDir(dataDir)
})

/**
 * A page for `user` in `room`, with the service worker in control (so it can reload offline).
 * @param {string} room
 * @param {string} user
 * @returns {Promise<{ context: BrowserContext, page: Page }>}
 */
async function openChat (room, user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, colorScheme: 'light' })
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  page.on('pageerror', (error) => pageErrors.push(error))
  await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`)
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined))
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: DEADLINE })
  await waitForStatus(page, 'saved')
  return { context, page }
}

/**
 * @param {Page} page
 * @param {string} word one of offline / connecting / synced / saved
 */
async function waitForStatus (page, word) {
  const status = page.getByTestId('connection-status')
  await waitFor(async () => (await status.textContent())?.includes(word), { timeoutMs: DEADLINE, what: `status "${word}" (now "${await status.textContent()}")` })
}

/** @param {Page} page */
function messageTexts (page) {
  return page.getByTestId('message').locator('.bubble').allTextContents()
}

/**
 * @param {Page} page
 * @param {string[]} expected
 * @param {string} what
 */
async function waitForMessages (page, expected, what) {
  await waitFor(async () => {
    const texts = await messageTexts(page)
    return expected.every((text) => texts.includes(text))
  }, { timeoutMs: DEADLINE, what: `${what}: ${expected.join(' | ')} (have ${(await messageTexts(page)).join(' | ')})` })
}

/**
 * @param {Page} page
 * @param {string} text
 */
async function send (page, text, { withEnter = false } = {}) {
  const input = page.getByTestId('message-input')
  await input.fill(text)
  if (withEnter) await input.press('Enter')
  else await page.getByTestId('send-button').click()
  await waitFor(async () => (await input.inputValue()) === '', { timeoutMs: DEADLINE, what: 'input cleared after send' })
}

/** @param {Page} page */
function presenceNames (page) {
  return page.getByTestId('presence-user').locator('.presence-name').allTextContents()
}

/**
 * @param {Page} page
 * @param {string} text
 */
function messageWith (page, text) {
  return page.getByTestId('message').filter({ hasText: text })
}

/**
 * Count on the first reaction button (👍) of the message with `text`.
 * @param {Page} page
 * @param {string} text
 */
async function thumbsUp (page, text) {
  return Number(await messageWith(page, text).getByTestId('reaction-count').first().textContent())
}

/** An emoji glyph of the chips' size covers a few hundred pixels; a fallback box has none colored. */
const MIN_COLORED_PIXELS = 30

/**
 * Pixels of a PNG that are strongly colored (max - min channel > 80), decoded in the page.
 * @param {Page} page
 * @param {Buffer} png
 * @returns {Promise<number>}
 */
function coloredPixels (page, png) {
  return page.evaluate(async (base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }))
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height)
    const context = /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext('2d'))
    context.drawImage(bitmap, 0, 0)
    const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height)
    let count = 0
    for (let i = 0; i < data.length; i += 4) {
      if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 80) count++
    }
    return count
  }, png.toString('base64'))
}

/** @param {string} room */
async function serverMessages (room) {
  const response = await fetch(`${server.httpUrl}/v1/rooms/${encodeURIComponent(room)}/state`)
  assert.equal(response.status, 200)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
  return readMessages(doc)
}

test('two people chat both ways, see presence, typing and merged reactions', async () => {
  const room = 'lobby'
  const alice = await openChat(room, 'alice')
  const bob = await openChat(room, 'bob')

  await waitFor(async () => (await presenceNames(alice.page)).includes('bob'), { timeoutMs: DEADLINE, what: 'bob in alice\'s presence' })
  await waitFor(async () => (await presenceNames(bob.page)).includes('alice'), { timeoutMs: DEADLINE, what: 'alice in bob\'s presence' })

  await send(alice.page, 'Hi Bob! Did the build pass?')
  await waitForMessages(bob.page, ['Hi Bob! Did the build pass?'], 'bob receives')
  await send(bob.page, 'Yes, all green. Shipping offline mode today.', { withEnter: true })
  await send(bob.page, 'Try going offline and typing.')
  await waitForMessages(alice.page, ['Yes, all green. Shipping offline mode today.', 'Try going offline and typing.'], 'alice receives')

  const own = messageWith(alice.page, 'Hi Bob!')
  assert.match(await own.getAttribute('class') ?? '', /\bown\b/, 'own message is marked')
  assert.doesNotMatch(await messageWith(alice.page, 'all green').getAttribute('class') ?? '', /\bown\b/)

  await messageWith(alice.page, 'Hi Bob!').getByTestId('reaction-button').first().click()
  await messageWith(bob.page, 'Hi Bob!').getByTestId('reaction-button').first().click()
  await waitFor(async () => await thumbsUp(alice.page, 'Hi Bob!') === 2 && await thumbsUp(bob.page, 'Hi Bob!') === 2,
    { timeoutMs: DEADLINE, what: 'both reactions counted on both sides' })

  await bob.page.getByTestId('message-input').pressSequentially('typing a reply')
  await waitFor(async () => (await alice.page.getByTestId('typing-indicator').textContent())?.includes('bob is typing'),
    { timeoutMs: DEADLINE, what: 'typing indicator at alice' })

  // The README's picture: refreshed with SCREENSHOT=1, otherwise written to a temp dir
  // so a test run never modifies tracked files.
  const shots = process.env.SCREENSHOT ? path.join(repoRoot, 'docs') : path.join(os.tmpdir(), 'performer-e2e')
  await mkdir(shots, { recursive: true })
  await alice.page.screenshot({ path: path.join(shots, 'screenshot.png') })

  await bob.context.close()
  await waitFor(async () => !(await presenceNames(alice.page)).includes('bob'), { timeoutMs: DEADLINE, what: 'bob gone from presence after closing' })
  await alice.context.close()
  assert.deepEqual(pageErrors, [])
})

test('offline: messages and a reaction survive a reload without network and arrive when back online', async () => {
  const room = 'offline-room'
  const alice = await openChat(room, 'alice')
  const bob = await openChat(room, 'bob')
  await send(bob.page, 'anyone there?')
  await waitForMessages(alice.page, ['anyone there?'], 'alice sees bob')

  await alice.context.setOffline(true)
  await waitForStatus(alice.page, 'offline')
  const offlineTexts = ['offline one', 'offline two', 'offline three']
  for (const text of offlineTexts) await send(alice.page, text)
  await messageWith(alice.page, 'anyone there?').getByTestId('reaction-button').first().click()
  await waitFor(async () => (await alice.page.getByTestId('connection-status').textContent())?.includes('4 queued'),
    { timeoutMs: DEADLINE, what: 'three messages and a reaction queued' })

  const reloaded = await alice.page.reload()
  assert.ok(reloaded?.fromServiceWorker(), 'the offline reload is answered by the service worker cache')
  await waitForMessages(alice.page, offlineTexts, 'offline messages after an offline reload')
  assert.equal(await thumbsUp(alice.page, 'anyone there?'), 1)
  await waitForStatus(alice.page, 'offline')
  await waitFor(async () => (await alice.page.getByTestId('connection-status').textContent())?.includes('4 queued'),
    { timeoutMs: DEADLINE, what: 'queued count restored after reload' })
  assert.deepEqual(await messageTexts(bob.page), ['anyone there?'], 'nothing leaked while offline')

  await alice.context.setOffline(false)
  await waitForMessages(bob.page, offlineTexts, 'bob receives the offline messages')
  await waitFor(async () => await thumbsUp(bob.page, 'anyone there?') === 1, { timeoutMs: DEADLINE, what: 'bob sees the offline reaction' })
  await waitForStatus(alice.page, 'saved')
  assert.deepEqual((await serverMessages(room)).map((m) => m.text), ['anyone there?', ...offlineTexts])
  await alice.context.close()
  await bob.context.close()
  assert.deepEqual(pageErrors, [])
})

test('an offline tab shows the others as "last seen", not online, and as online again once back', async () => {
  const room = 'presence-offline-room'
  const alice = await openChat(room, 'alice')
  const bob = await openChat(room, 'bob')
  const bobEntry = alice.page.locator('[data-testid=presence-user][data-name="bob"]')
  await waitFor(async () => (await bobEntry.getAttribute('data-online')) === 'true', { timeoutMs: DEADLINE, what: 'bob online at alice' })
  assert.doesNotMatch(await bobEntry.textContent() ?? '', /last seen/)

  await alice.context.setOffline(true)
  await waitForStatus(alice.page, 'offline')
  await waitFor(async () => /last seen \d/.test(await bobEntry.textContent() ?? ''),
    { timeoutMs: DEADLINE, what: `bob shown as "last seen" at offline alice (now "${await bobEntry.textContent()}")` })
  assert.equal(await bobEntry.getAttribute('data-online'), 'false')
  assert.ok((await presenceNames(alice.page)).includes('bob'), 'bob is still listed, as last seen')
  const aliceEntry = alice.page.locator('[data-testid=presence-user][data-name="alice"]')
  assert.doesNotMatch(await aliceEntry.textContent() ?? '', /last seen/, 'alice herself is not "last seen"')
  const shots = path.join(os.tmpdir(), 'performer-e2e')
  await mkdir(shots, { recursive: true })
  await alice.page.screenshot({ path: path.join(shots, 'presence-offline.png') })

  await alice.context.setOffline(false)
  await waitForStatus(alice.page, 'saved')
  await waitFor(async () => (await bobEntry.getAttribute('data-online')) === 'true' && !/last seen/.test(await bobEntry.textContent() ?? ''),
    { timeoutMs: DEADLINE, what: 'bob online again at alice after reconnecting' })
  await alice.context.close()
  await bob.context.close()
  assert.deepEqual(pageErrors, [])
})

test('a server restart in the middle of a chat loses nothing', async () => {
  const room = 'restart-room'
  const alice = await openChat(room, 'alice')
  const bob = await openChat(room, 'bob')
  await send(alice.page, 'before the restart')
  await waitForMessages(bob.page, ['before the restart'], 'bob before restart')
  await waitForStatus(alice.page, 'saved')

  const port = Number(new URL(server.httpUrl).port)
  await server.stop()
  await waitFor(async () => !(await alice.page.getByTestId('connection-status').textContent())?.includes('saved'),
    { timeoutMs: DEADLINE, what: 'alice notices the server is gone' })
  await send(alice.page, 'while the server is down')
  server = await startServer({ dataDir, port })

  await waitForMessages(bob.page, ['before the restart', 'while the server is down'], 'bob after restart')
  await send(bob.page, 'after the restart')
  await waitForMessages(alice.page, ['after the restart'], 'alice after restart')
  await waitForStatus(alice.page, 'saved')
  await waitForStatus(bob.page, 'saved')
  assert.deepEqual((await serverMessages(room)).map((m) => m.text), ['before the restart', 'while the server is down', 'after the restart'])
  await alice.context.close()
  await bob.context.close()
})

test('history view shows the chat as it was at an earlier log position', async () => {
  const room = 'history-room'
  const alice = await openChat(room, 'alice')
  const texts = ['first', 'second', 'third']
  /** @type {number[]} log position right after each message was stored */
  const seqs = []
  for (const text of texts) {
    await send(alice.page, text)
    await waitForStatus(alice.page, 'saved')
    seqs.push(await alice.page.evaluate(() => /** @type {any} */ (window).performer.status.seq))
  }
  assert.ok(seqs[0] > 0 && seqs[0] < seqs[1] && seqs[1] < seqs[2], `seqs ${seqs.join(', ')}`)
  const history = await (await fetch(`${server.httpUrl}/v1/rooms/${room}/history`)).json()
  /** @type {number[]} */
  const logSeqs = history.entries.map((/** @type {{ seq: number }} */ entry) => entry.seq)

  await alice.page.getByTestId('history-toggle').click()
  const label = alice.page.getByTestId('history-label')
  const past = alice.page.getByTestId('history-message')
  const slider = alice.page.getByTestId('history-slider')
  /**
   * Move the slider to log position `seq`, wait until the view has loaded it, return what it shows.
   * @param {number} seq
   */
  async function showAt (seq) {
    const index = logSeqs.indexOf(seq)
    assert.ok(index >= 0, `seq ${seq} is in the history (${logSeqs.join(', ')})`)
    await slider.fill(String(index))
    await waitFor(async () => {
      const text = await label.textContent() ?? '' // one read: loaded, and at this position
      return text.startsWith(`#${seq} of `) && / · \d+ messages$/.test(text)
    },
      { timeoutMs: DEADLINE, what: `history view loaded #${seq} (label "${await label.textContent()}")` })
    return past.locator('.bubble').allTextContents()
  }

  await waitFor(async () => (await label.textContent())?.startsWith(`#${logSeqs[logSeqs.length - 1]} of`) && (await past.count()) === 3,
    { timeoutMs: DEADLINE, what: 'history opens at the latest position' })
  assert.deepEqual(await showAt(seqs[0]), ['first'], 'right after the first message: only it')
  assert.deepEqual(await showAt(seqs[1]), ['first', 'second'])
  assert.deepEqual(await showAt(seqs[2]), texts)
  assert.deepEqual(await showAt(seqs[0]), ['first'], 'and back again')
  assert.deepEqual(await messageTexts(alice.page), texts, 'the live list (hidden meanwhile) still has everything')
  await alice.page.getByTestId('history-toggle').click()
  assert.deepEqual(await messageTexts(alice.page), texts, 'the live chat is untouched')
  await alice.context.close()
})

/**
 * Open the History view and move it to log position `seq`; resolves once that position is shown.
 * @param {Page} page
 * @param {string} room
 * @param {number} seq
 */
async function openHistoryAt (page, room, seq) {
  const history = await (await fetch(`${server.httpUrl}/v1/rooms/${encodeURIComponent(room)}/history`)).json()
  const index = history.entries.findIndex((/** @type {{ seq: number }} */ entry) => entry.seq === seq)
  assert.ok(index >= 0, `seq ${seq} is in the history`)
  await page.getByTestId('history-toggle').click()
  const label = page.getByTestId('history-label')
  await waitFor(async () => / · \d+ messages$/.test(await label.textContent() ?? ''), { timeoutMs: DEADLINE, what: 'history loaded' })
  await page.getByTestId('history-slider').fill(String(index))
  await waitFor(async () => {
    const text = await label.textContent() ?? ''
    return text.startsWith(`#${seq} of `) && / · \d+ messages$/.test(text)
  }, { timeoutMs: DEADLINE, what: `history at #${seq} (label "${await label.textContent()}")` })
}

/** @param {Page} page */
async function logSeq (page) {
  return /** @type {number} */ (await page.evaluate(() => /** @type {any} */ (window).performer.status.seq))
}

test('versions: "Restore this version" in one tab brings the earlier content back live in every tab', async () => {
  const room = 'restore-room'
  const alice = await openChat(room, 'alice')
  const bob = await openChat(room, 'bob')
  await send(alice.page, 'the good draft')
  await waitForStatus(alice.page, 'saved')
  const good = await logSeq(alice.page)
  await send(bob.page, 'oops, bob broke it')
  await send(alice.page, 'and more noise')
  const all = ['the good draft', 'oops, bob broke it', 'and more noise']
  await waitForMessages(alice.page, all, 'alice has everything')
  await waitForMessages(bob.page, all, 'bob has everything')
  await waitForStatus(alice.page, 'saved')
  await waitForStatus(bob.page, 'saved')

  await openHistoryAt(alice.page, room, good)
  assert.deepEqual(await alice.page.getByTestId('history-message').locator('.bubble').allTextContents(), ['the good draft'])
  const restore = alice.page.getByTestId('restore-button')
  assert.equal(await restore.isEnabled(), true, 'an earlier version can be restored')
  await restore.click()

  // Tab B never reloads: the restore reaches it as a live update.
  const restored = async (/** @type {Page} */ page) => JSON.stringify(await messageTexts(page)) === JSON.stringify(['the good draft'])
  await waitFor(() => restored(bob.page), { timeoutMs: DEADLINE, what: `bob's live chat shows the restored version (has ${(await messageTexts(bob.page)).join(' | ')})` })
  await waitFor(() => restored(alice.page), { timeoutMs: DEADLINE, what: `alice's live chat shows the restored version (has ${(await messageTexts(alice.page)).join(' | ')})` })
  assert.equal(await alice.page.getByTestId('history-toggle').getAttribute('aria-pressed'), 'false', 'back to live after restoring')
  assert.deepEqual((await serverMessages(room)).map((m) => m.text), ['the good draft'])
  const history = await (await fetch(`${server.httpUrl}/v1/rooms/${room}/history`)).json()
  assert.ok(history.entries.some((/** @type {any} */ entry) => entry.restore_of === good), 'the restore is in the history with restore_of')

  // Nothing is lost for good: the newest position before the restore still has everything.
  await send(bob.page, 'after the restore')
  await waitForMessages(alice.page, ['the good draft', 'after the restore'], 'editing goes on after a restore')
  await alice.context.close()
  await bob.context.close()
  assert.deepEqual(pageErrors, [])
})

test('versions: named versions are marks on the history slider that jump to their position', async () => {
  const room = 'versions-room'
  const alice = await openChat(room, 'alice')
  await send(alice.page, 'release one')
  await waitForStatus(alice.page, 'saved')
  const named = await fetch(`${server.httpUrl}/v1/rooms/${room}/versions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'v1' })
  })
  assert.equal(named.status, 200, `naming a version: ${named.status} ${await named.clone().text()}`)
  const v1 = await named.json()
  await send(alice.page, 'work after v1')
  await waitForStatus(alice.page, 'saved')

  await alice.page.getByTestId('history-toggle').click()
  const mark = alice.page.getByTestId('version-mark').filter({ hasText: 'v1' })
  await waitFor(async () => (await mark.count()) === 1, { timeoutMs: DEADLINE, what: 'the v1 mark' })
  assert.equal(Number(await mark.getAttribute('data-seq')), v1.seq)
  const index = await mark.getAttribute('data-index')
  assert.equal(await alice.page.locator(`#history-marks option[value="${index}"]`).getAttribute('label'), 'v1', 'a tick on the slider')
  await mark.click()
  const label = alice.page.getByTestId('history-label')
  await waitFor(async () => {
    const text = await label.textContent() ?? ''
    return text.startsWith(`#${v1.seq} of `) && text.includes('“v1”') && / · \d+ messages$/.test(text)
  }, { timeoutMs: DEADLINE, what: `history at v1 (label "${await label.textContent()}")` })
  assert.deepEqual(await alice.page.getByTestId('history-message').locator('.bubble').allTextContents(), ['release one'])
  await alice.context.close()
  assert.deepEqual(pageErrors, [])
})

test('reaction emoji are drawn in color, not as empty boxes (the app ships its own emoji font)', async () => {
  const room = 'emoji-room'
  const alice = await openChat(room, 'alice')
  await send(alice.page, 'react to me')
  const buttons = messageWith(alice.page, 'react to me').getByTestId('reaction-button')
  const emoji = await buttons.evaluateAll((els) => els.map((el) => el.getAttribute('data-emoji') ?? ''))
  assert.deepEqual(emoji, REACTIONS, 'one button per reaction emoji')
  // React with every emoji so every chip is fully visible (an unused one is transparent until hovered).
  for (let i = 0; i < emoji.length; i++) await buttons.nth(i).click()
  await waitFor(async () => (await buttons.evaluateAll((els) => els.every((el) => el.getAttribute('data-count') === '1'))),
    { timeoutMs: DEADLINE, what: 'every reaction counted' })

  // What a person sees: the pixels of each rendered glyph. A missing glyph is a gray or black box
  // (or a black outline heart from a text font); a color emoji has many strongly colored pixels.
  /** @type {number[]} */
  let colored = []
  await waitFor(async () => {
    colored = []
    for (let i = 0; i < emoji.length; i++) {
      const png = await buttons.nth(i).locator('.emoji').screenshot()
      colored.push(await coloredPixels(alice.page, png))
    }
    return colored.every((n) => n >= MIN_COLORED_PIXELS)
  }, { timeoutMs: DEADLINE, what: 'every emoji drawn in color' }).catch((error) => {
    throw new Error(`${error.message}; colored pixels per emoji ${emoji.join(' ')}: ${colored.join(', ')}`)
  })

  const shots = path.join(os.tmpdir(), 'performer-e2e')
  await mkdir(shots, { recursive: true })
  await messageWith(alice.page, 'react to me').screenshot({ path: path.join(shots, 'reactions.png') })

  const faces = await alice.page.evaluate(() => [...document.fonts].map((face) => `${face.family}:${face.status}`))
  assert.ok(faces.includes('"Performer Emoji":loaded') || faces.includes('Performer Emoji:loaded'), `the shipped emoji font was used (faces: ${faces.join(', ')})`)
  const font = await fetch(`${server.httpUrl}/static/fonts/emoji.woff2`)
  assert.equal(font.status, 200, 'the font is served from the bundle')
  assert.equal((await fetch(`${server.httpUrl}/static/fonts/OFL.txt`)).status, 200, 'with its licence')
  await alice.context.close()
  assert.deepEqual(pageErrors, [])
})

test('the message list follows new messages from others when the reader is at the bottom', async () => {
  const room = 'scroll-room'
  const alice = await openChat(room, 'alice')
  const bob = await openChat(room, 'bob')
  const count = 25
  for (let i = 0; i < count; i++) await send(alice.page, `line ${i}`, { withEnter: true })
  await waitFor(async () => (await bob.page.getByTestId('message').count()) === count, { timeoutMs: DEADLINE, what: 'bob has every line' })
  const distanceFromBottom = () => bob.page.evaluate(() => {
    const list = /** @type {HTMLElement} */ (document.getElementById('messages'))
    return list.scrollHeight > list.clientHeight ? list.scrollHeight - list.scrollTop - list.clientHeight : -1
  })
  await waitFor(async () => { const d = await distanceFromBottom(); return d >= 0 && d < 2 }, { timeoutMs: DEADLINE, what: `bob's list scrolled to the newest line (distance ${await distanceFromBottom()})` })
  await alice.context.close()
  await bob.context.close()
})

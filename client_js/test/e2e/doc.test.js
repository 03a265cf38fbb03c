/**
 * The rich-text page (Tiptap over @hocuspocus/provider) in real headless Chromium against the
 * real server process, with a stock y-websocket client in the same room.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { launchBrowser } from '../helpers/browser.js'
import { startServer, makeDataDir, removeDataDir } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('playwright-core').BrowserContext} BrowserContext */

const DEADLINE = 30000
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
 * @param {string} room
 * @param {string} user
 * @returns {Promise<{ context: BrowserContext, page: Page }>}
 */
async function openDoc (room, user) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } })
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  page.on('pageerror', (error) => pageErrors.push(error))
  await page.goto(`${server.httpUrl}/doc?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`)
  await waitForStatus(page, 'saved')
  return { context, page }
}

/**
 * @param {Page} page
 * @param {string} word
 * @param {number} [timeoutMs]
 */
async function waitForStatus (page, word, timeoutMs = DEADLINE) {
  const status = page.getByTestId('connection-status')
  await waitFor(async () => (await status.textContent())?.includes(word), { timeoutMs, what: `status "${word}" (now "${await status.textContent()}")` })
}

// Back online, a provider that was mid-way through its retry backoff (up to 30 s between
// attempts) may wait for its next attempt before it reconnects.
const RECONNECT_DEADLINE = 75000

/** @param {Page} page */
const editorHtml = (page) => page.getByTestId('editor').innerHTML()

/** The page's document as Tiptap's XML (carets and selections are not part of it). @param {Page} page */
const docXml = (page) => page.evaluate(() => /** @type {any} */ (window).performerDoc.doc.getXmlFragment('default').toString())

/**
 * Types at the end of the document.
 * @param {Page} page
 * @param {string} text
 */
async function typeAtEnd (page, text) {
  await page.getByTestId('editor').click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(text)
}

/** The room's content as the server stores it, rendered as Tiptap's XML. */
async function storedXml (/** @type {string} */ room) {
  const response = await fetch(`${server.httpUrl}/v1/rooms/${room}/state`)
  assert.equal(response.status, 200)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
  return doc.getXmlFragment('default').toString()
}

test('two tabs edit with formatting, go offline, come back and converge, with a y-websocket client too', async () => {
  const room = 'rich-text'
  const alice = await openDoc(room, 'alice')
  const bob = await openDoc(room, 'bob')

  await typeAtEnd(alice.page, 'Hello ')
  await alice.page.getByTestId('bold-button').click()
  await alice.page.keyboard.type('world')
  await waitFor(async () => (await editorHtml(bob.page)).includes('<strong>world</strong>'), { timeoutMs: DEADLINE, what: async () => `bob sees the bold word (alice: ${await editorHtml(alice.page)}, bob: ${await editorHtml(bob.page)})` })
  await waitFor(async () => (await bob.page.locator('.collaboration-carets__label').allTextContents()).includes('alice'), { timeoutMs: DEADLINE, what: "alice's caret at bob" })

  await alice.context.setOffline(true)
  await bob.context.setOffline(true)
  await waitForStatus(alice.page, 'offline')
  await waitForStatus(bob.page, 'offline')
  await alice.page.keyboard.press('Enter')
  await alice.page.getByTestId('italic-button').click()
  await alice.page.keyboard.type('offline alice')
  await typeAtEnd(bob.page, ' offline bob')
  assert.ok(!(await editorHtml(bob.page)).includes('offline alice'), 'nothing crossed while offline')

  await alice.context.setOffline(false)
  await bob.context.setOffline(false)
  await waitForStatus(alice.page, 'saved', RECONNECT_DEADLINE)
  await waitForStatus(bob.page, 'saved', RECONNECT_DEADLINE)
  await waitFor(async () => {
    const [a, b] = [await docXml(alice.page), await docXml(bob.page)]
    return a === b && a.includes('<italic>offline alice</italic>') && a.includes('offline bob')
  }, { timeoutMs: DEADLINE, what: 'both tabs converge' })

  const expected = await docXml(alice.page)
  const doc = new Y.Doc()
  const yws = new WebsocketProvider(server.wsUrl, room, doc, { WebSocketPolyfill: /** @type {any} */ (WebSocket), disableBc: true })
  try {
    await waitFor(() => {
      const xml = doc.getXmlFragment('default').toString()
      return xml.includes('offline alice') && xml.includes('offline bob') && xml.includes('<bold>world') && xml === expected
    }, { timeoutMs: DEADLINE, what: 'the y-websocket client holds the same document' })
  } finally {
    yws.destroy()
  }
  const stored = await storedXml(room)
  assert.equal(stored, expected)
  assert.deepEqual(pageErrors, [])
})

test('kill -9 while a Tiptap tab types: everything the provider counted as synced is on disk', async () => {
  const crashDir = await makeDataDir()
  let crashing = await startServer({ dataDir: crashDir })
  const context = await browser.newContext()
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  try {
    await page.goto(`${crashing.httpUrl}/doc?room=crash&user=typist`)
    await waitForStatus(page, 'saved')
    await page.getByTestId('editor').click()
    // Type in the page itself, in fast bursts, and note the text each time the provider
    // counts no unsynced change: that text was acknowledged, so it must survive.
    await page.evaluate(() => {
      const { editor, provider } = /** @type {any} */ (window).performerDoc
      const w = /** @type {any} */ (window)
      w.savedTexts = []
      let n = 0
      provider.on('unsyncedChanges', (/** @type {{ number: number }} */ { number }) => {
        if (number === 0) w.savedTexts.push(editor.getText())
      })
      const type = () => {
        editor.commands.insertContent(`w${n++} `)
        w.typing = setTimeout(type, n % 10 === 0 ? 40 : 3) // bursts, as people type
      }
      type()
    })
    await waitFor(async () => (await page.evaluate(() => /** @type {any} */ (window).savedTexts.length)) >= 20,
      { timeoutMs: DEADLINE, what: 'twenty saved moments while typing' })
    await crashing.kill()
    const savedTexts = /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).savedTexts))
    const lastSaved = savedTexts[savedTexts.length - 1]
    crashing = await startServer({ dataDir: crashDir })
    const response = await fetch(`${crashing.httpUrl}/v1/rooms/crash/state`)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
    const stored = doc.getXmlFragment('default').toString().replace(/<[^>]+>/g, '')
    assert.ok(lastSaved.length > 0)
    assert.ok(stored.startsWith(lastSaved.trimEnd()), `acknowledged "${lastSaved.slice(-40)}", stored "${stored.slice(-40)}"`)
  } finally {
    await context.close()
    await crashing.stop()
    await removeDataDir(crashDir)
  }
})

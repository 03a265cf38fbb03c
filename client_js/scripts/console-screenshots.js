/**
 * Refresh the docs' console pictures: a real server, Node clients editing three rooms, the console in Chromium.
 *
 *   node scripts/console-screenshots.js    write docs/console-rooms.png and docs/console-room.png
 */
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { launchBrowser } from '../test/helpers/browser.js'
import { startServer, makeDataDir, removeDataDir, repoRoot, performerBin } from '../test/helpers/server.js'
import { waitFor } from '../test/helpers/wait.js'

const ROOMS = { lobby: ['ann', 'bob', 'cid'], 'design-review': ['dan', 'eve'], 'release-notes': ['fay'] }

const SECRET = 'screenshots-' + '0123456789abcdef'.repeat(4)

/** `performer token` for `user` on every room. @param {string} user @param {string[]} flags */
function token (user, ...flags) {
  return execFileSync(performerBin, ['token', '--secret', SECRET, '--room', '*', '--user', user, ...flags], { cwd: repoRoot, encoding: 'utf8' }).trim()
}

const dataDir = await makeDataDir()
const server = await startServer({ dataDir, extraArgs: ['--auth-secret', SECRET, '--rules', path.join(repoRoot, 'examples', 'chat-rules.toml')] })
const browser = await launchBrowser()
/** @type {WebsocketProvider[]} */
const providers = []
/** @type {Map<string, Y.Doc>} room/user -> document */
const docs = new Map()
try {
  for (const [room, users] of Object.entries(ROOMS)) {
    for (const user of users) {
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(server.wsUrl, room, doc, { WebSocketPolyfill: /** @type {any} */ (WebSocket), params: { token: token(user) } })
      providers.push(provider)
      docs.set(`${room}/${user}`, doc)
      await waitFor(() => provider.synced, { what: `${user} in ${room}` })
      const messages = doc.getArray('messages')
      for (let i = 1; i <= 3; i++) {
        const message = new Y.Map()
        message.set('user', user)
        message.set('text', `${user}'s note ${i}`)
        messages.push([message])
      }
    }
  }
  // bob deletes ann's first note in the lobby: the chat rules undo it, and the console shows a refusal
  const bobs = /** @type {Y.Doc} */ (docs.get('lobby/bob')).getArray('messages')
  await waitFor(() => bobs.length === 9, { what: 'bob has every lobby note' })
  bobs.delete(0, 1)
  await waitFor(() => bobs.length === 9, { what: "ann's note back on bob's replica" })
  const page = await browser.newPage({ viewport: { width: 1100, height: 640 } })
  await page.goto(`${server.httpUrl}/console?token=${token('ops', '--admin')}`)
  await waitFor(async () => (await page.getByTestId('room-row').count()) === 3, { what: 'three rows' })
  await waitFor(async () => (await page.getByTestId('room-last-user').allTextContents()).every((t) => t !== '—'), { what: 'last users' })
  await page.screenshot({ path: path.join(repoRoot, 'docs', 'console-rooms.png') })
  await page.setViewportSize({ width: 1100, height: 1100 })
  await page.locator('[data-room="lobby"] a').click()
  await waitFor(async () => (await page.getByTestId('timeline-user').count()) === 3, { what: 'timeline' })
  await waitFor(async () => (await page.getByTestId('timeline-refusal').count()) === 1, { what: 'the refusal on the timeline' })
  await page.getByTestId('at-seq').fill('4')
  await page.getByTestId('at-seq').dispatchEvent('change')
  await waitFor(async () => (await page.getByTestId('at-shown').getAttribute('data-seq')) === '4', { what: 'seq 4' })
  await page.screenshot({ path: path.join(repoRoot, 'docs', 'console-room.png'), fullPage: true })
  console.log('wrote docs/console-rooms.png and docs/console-room.png')
} finally {
  for (const provider of providers) provider.destroy()
  await browser.close()
  await server.stop()
  await removeDataDir(dataDir)
}

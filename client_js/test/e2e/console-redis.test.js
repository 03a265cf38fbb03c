/**
 * The operator console on two `performer serve --redis` processes sharing one real redis-server (JWT auth on, the
 * chat demo's rules), in real headless Chromium, while Node Yjs clients edit through both processes: each console
 * lists the shared rooms with their last users and refusals, and a room page on one process follows edits and
 * refusals made through the other.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { launchBrowser } from '../helpers/browser.js'
import { ConsoleKit, DEADLINE, postMessage, rowOf, timelineUsers } from '../helpers/console.js'
import { startRedis } from '../helpers/redis.js'
import { startServer, makeDataDir, removeDataDir, repoRoot } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'console-redis-e2e-' + '0123456789abcdef'.repeat(4)
const RULES = path.join(repoRoot, 'examples', 'chat-rules.toml')
/** How soon a change must show (the table polls every second; generous for a loaded machine). */
const LIVE_MS = 8000

/** @type {import('../helpers/redis.js').RunningRedis} */
let redis
/** @type {import('../helpers/server.js').RunningServer[]} */
const servers = []
/** @type {string[]} */
const dirs = []
/** @type {import('playwright-core').Browser} */
let browser
/** @type {ConsoleKit} */
let kit

before(async () => {
  redis = await startRedis()
  for (let i = 0; i < 2; i++) {
    const dataDir = await makeDataDir()
    dirs.push(dataDir)
    servers.push(await startServer({ dataDir, extraArgs: ['--redis', redis.url, '--auth-secret', SECRET, '--rules', RULES] }))
  }
  browser = await launchBrowser()
  kit = new ConsoleKit({ secret: SECRET, browser })
})

after(async () => {
  kit?.close()
  await browser?.close()
  for (const server of servers) await server.stop()
  await redis?.stop()
  for (const dir of dirs) await removeDataDir(dir)
  assert.deepEqual(kit.pageErrors.map(String), [])
})

test('two processes on one Redis: both consoles list the shared rooms; a room page follows edits and refusals made on the other process', async () => {
  const [one, two] = servers
  const ann = await kit.nodeClient(one, 'chat', 'ann')
  const bo = await kit.nodeClient(two, 'chat', 'bo')
  const cy = await kit.nodeClient(two, 'notes', 'cy')
  postMessage(ann, 'ann', 'hello from process one')
  cy.items.push(['n1'])
  await Promise.all([kit.waitDurable(one, 'chat', 1), kit.waitDurable(one, 'notes', 1)])

  // Each console shows every room of the shared store, and the connections of its own process.
  const pages = await Promise.all([kit.openConsole(one), kit.openConsole(two)])
  await waitFor(async () => {
    const [chat, notes] = await Promise.all([rowOf(pages[0], 'chat'), rowOf(pages[0], 'notes')])
    return chat?.connections === '1' && chat.users === 'ann' && chat.lastUser === 'ann' && chat.refusals === '0' &&
      notes?.connections === '0' && notes.lastUser === 'cy'
  }, { timeoutMs: DEADLINE, what: 'process one lists chat (ann here) and notes (edited on process two)' })
  await waitFor(async () => {
    const [chat, notes] = await Promise.all([rowOf(pages[1], 'chat'), rowOf(pages[1], 'notes')])
    return chat?.connections === '1' && chat.users === 'bo' && notes?.connections === '1' && notes.users === 'cy'
  }, { timeoutMs: DEADLINE, what: 'process two lists its own connections' })
  assert.equal(await pages[0].getByTestId('room-row').count(), 2)

  // An edit through process two shows in process one's table, live.
  await waitFor(() => bo.messages.length === 1, { timeoutMs: DEADLINE, what: "ann's message on bo's replica" })
  postMessage(bo, 'bo', 'hi from process two')
  await waitFor(async () => (await rowOf(pages[0], 'chat'))?.lastUser === 'bo', { timeoutMs: LIVE_MS, what: 'chat last edited by bo, on process one' })

  // The room page on process one: the tree follows bo's edits; bo's refused delete shows on the timeline.
  const page = pages[0]
  await page.locator('[data-room="chat"] a').click()
  const tree = page.getByTestId('json-tree')
  await waitFor(async () => (await tree.textContent())?.includes('"hi from process two"'), { what: "bo's message in the tree" })
  postMessage(bo, 'bo', 'and more')
  await waitFor(async () => (await tree.textContent())?.includes('"and more"'), { timeoutMs: LIVE_MS, what: 'the tree follows an edit made on process two' })
  bo.messages.delete(0, 1) // ann's message: refused, undone by process two
  await waitFor(async () => (await page.getByTestId('timeline-refusal').count()) === 1, { timeoutMs: LIVE_MS, what: 'the refusal on the timeline, live' })
  assert.match(await page.getByTestId('timeline-refusal').textContent() ?? '', /^#4 bo refused by a rule: only the author can delete messages\[0\] · /)
  await waitFor(async () => (await timelineUsers(page)).join() === 'bo: 3 edits,ann: 1 edits', { what: 'the timeline by user' })
  assert.deepEqual((await kit.api(one, '/v1/rooms/chat/json')).doc.messages.map((/** @type {any} */ m) => m.text),
    ['hello from process one', 'hi from process two', 'and more'])

  // Both tables count the refusal (one record in the shared store).
  await page.getByRole('link', { name: '← Rooms' }).click()
  for (const each of pages) {
    await waitFor(async () => (await rowOf(each, 'chat'))?.refusals === '1', { timeoutMs: LIVE_MS, what: 'the chat row counts one refusal' })
    assert.equal((await rowOf(each, 'notes'))?.refusals, '0')
  }
  for (const each of pages) await each.context().close()
})

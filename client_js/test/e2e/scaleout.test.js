/**
 * Two `performer serve --redis` processes behind one real redis-server: a browser on each
 * chats with the other (messages both ways and presence), as the README's scale-out
 * section promises.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launchBrowser } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis.js'
import { startServer, makeDataDir, removeDataDir } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const DEADLINE = 20000
/** @type {import('../helpers/redis.js').RunningRedis} */
let redis
/** @type {import('../helpers/server.js').RunningServer[]} */
const servers = []
/** @type {string[]} */
const dirs = []
/** @type {import('playwright-core').Browser} */
let browser

before(async () => {
  redis = await startRedis()
  for (let i = 0; i < 2; i++) {
    const dataDir = await makeDataDir()
    dirs.push(dataDir)
    servers.push(await startServer({ dataDir, extraArgs: ['--redis', redis.url] }))
  }
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  for (const server of servers) await server.stop()
  await redis?.stop()
  for (const dir of dirs) await removeDataDir(dir)
})

/**
 * @param {import('../helpers/server.js').RunningServer} server
 * @param {string} user
 */
async function openChat (server, user) {
  const context = await browser.newContext()
  context.setDefaultTimeout(DEADLINE)
  const page = await context.newPage()
  await page.goto(`${server.httpUrl}/?room=cluster&user=${user}`)
  await waitFor(async () => (await page.getByTestId('connection-status').textContent())?.includes('saved'),
    { timeoutMs: DEADLINE, what: `${user} connected` })
  return { context, page }
}

/** @param {import('playwright-core').Page} page */
async function texts (page) {
  return page.getByTestId('message').locator('.bubble').allTextContents()
}

/** @param {import('playwright-core').Page} page */
async function presence (page) {
  return (await page.getByTestId('presence-user').allTextContents()).join(' ')
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
async function send (page, text) {
  await page.getByTestId('message-input').fill(text)
  await page.getByTestId('send-button').click()
}

test('browsers on two server processes sharing Redis chat with each other', async () => {
  const alice = await openChat(servers[0], 'alice')
  const bob = await openChat(servers[1], 'bob')
  await send(alice.page, 'hello from process one')
  await waitFor(async () => (await texts(bob.page)).includes('hello from process one'),
    { timeoutMs: DEADLINE, what: "alice's message on bob's process" })
  await send(bob.page, 'hi from process two')
  await waitFor(async () => (await texts(alice.page)).includes('hi from process two'),
    { timeoutMs: DEADLINE, what: "bob's message on alice's process" })
  await waitFor(async () => (await presence(alice.page)).includes('bob') && (await presence(bob.page)).includes('alice'),
    { timeoutMs: DEADLINE, what: 'presence across processes' })
  assert.deepEqual(await texts(alice.page), await texts(bob.page))
  await alice.context.close()
  await bob.context.close()
})

/**
 * What the console's browser tests share: tokens from the real `performer token`, Node Yjs clients (y-websocket,
 * as any app would use it) on a given server, admin REST reads, and the console opened in Chromium.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { performerBin, repoRoot } from './server.js'
import { waitFor } from './wait.js'

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('./server.js').RunningServer} RunningServer */
/** @typedef {{ doc: Y.Doc, items: Y.Array<unknown>, messages: Y.Array<Y.Map<unknown>>, provider: WebsocketProvider }} NodeClient */

export const DEADLINE = 20000

export class ConsoleKit {
  /** @param {{ secret: string, browser: import('playwright-core').Browser }} options */
  constructor ({ secret, browser }) {
    this.secret = secret
    this.browser = browser
    /** @type {Map<string, string>} */
    this.tokens = new Map()
    /** @type {NodeClient[]} */
    this.clients = []
    /** @type {Error[]} errors thrown in any console page */
    this.pageErrors = []
  }

  /** `performer token ...`, the real command (once per set of flags: each run starts Python). @param {string[]} flags */
  token (...flags) {
    const key = flags.join(' ')
    if (!this.tokens.has(key)) {
      const args = ['token', '--secret', this.secret, '--room', '*', ...flags]
      this.tokens.set(key, execFileSync(performerBin, args, { cwd: repoRoot, encoding: 'utf8' }).trim())
    }
    return /** @type {string} */ (this.tokens.get(key))
  }

  adminToken () {
    return this.token('--user', 'ops', '--admin')
  }

  /**
   * A Node client in `room` as `user` (not an admin), synced.
   * @param {RunningServer} server @param {string} room @param {string} user @returns {Promise<NodeClient>}
   */
  async nodeClient (server, room, user) {
    const doc = new Y.Doc()
    const provider = new WebsocketProvider(server.wsUrl, room, doc, { WebSocketPolyfill: /** @type {any} */ (WebSocket), params: { token: this.token('--user', user) } })
    const client = { doc, items: doc.getArray('items'), messages: doc.getArray('messages'), provider }
    this.clients.push(client)
    await waitFor(() => provider.synced, { timeoutMs: DEADLINE, what: `${user} synced in ${room}` })
    return /** @type {NodeClient} */ (client)
  }

  /** @param {RunningServer} server @param {string} path @returns {Promise<any>} */
  async api (server, path) {
    const response = await fetch(server.httpUrl + path, { headers: { Authorization: `Bearer ${this.adminToken()}` } })
    const text = await response.text()
    assert.equal(response.status, 200, `${path}: ${text}`)
    return JSON.parse(text)
  }

  /** @param {RunningServer} server @param {string} room @param {number} seq */
  async waitDurable (server, room, seq) {
    await waitFor(async () => (await this.api(server, `/v1/rooms/${room}/json`)).seq >= seq, { timeoutMs: DEADLINE, what: `${room} at seq ${seq}` })
  }

  /**
   * The console as an admin, in a new browser context.
   * @param {RunningServer} server @param {{ width: number, height: number }} [viewport] @returns {Promise<Page>}
   */
  async openConsole (server, viewport = { width: 1100, height: 800 }) {
    const context = await this.browser.newContext({ viewport })
    context.setDefaultTimeout(DEADLINE)
    const page = await context.newPage()
    page.on('pageerror', (error) => this.pageErrors.push(error))
    const response = await page.goto(`${server.httpUrl}/console?token=${this.adminToken()}`)
    assert.equal(response?.status(), 200)
    return page
  }

  close () {
    for (const { provider, doc } of this.clients) { provider.destroy(); doc.destroy() }
  }
}

/**
 * A chat message as the demo writes it (examples/chat-rules.toml judges them).
 * @param {NodeClient} client @param {string} user @param {string} text
 */
export function postMessage (client, user, text) {
  const message = new Y.Map()
  message.set('user', user)
  message.set('text', text)
  message.set('reactions', new Y.Map())
  client.messages.push([message])
}

/**
 * A row of the rooms table, read from its cells (null while the room is not listed).
 * @param {Page} page
 * @param {string} room
 */
export async function rowOf (page, room) {
  const row = page.locator(`[data-testid="room-row"][data-room="${room}"]`)
  if ((await row.count()) !== 1) return null
  return {
    text: await row.textContent() ?? '',
    connections: await row.getByTestId('room-connections').textContent(),
    users: await row.getByTestId('room-users').textContent(),
    lastUser: await row.getByTestId('room-last-user').textContent(),
    refusals: await row.getByTestId('room-refusals').textContent()
  }
}

/** @param {Page} page @returns {Promise<string[]>} the timeline's per-user totals */
export function timelineUsers (page) {
  return page.getByTestId('timeline-user').allTextContents()
}

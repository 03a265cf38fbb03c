/**
 * Time travel over the room log through the server's HTTP API.
 *
 * The server answers `GET /v1/rooms/{room}/history` with log entries and
 * `GET /v1/rooms/{room}/state?at=SEQ` with the document as of that entry (a Yjs v1 update).
 * Applying that update to a fresh Y.Doc gives a read-only view of the past that cannot leak
 * into the live document. Versions: `POST /v1/rooms/{room}/restore` makes the room equal to an
 * earlier seq again (one forward update, which every open client receives through normal sync),
 * and `GET /v1/rooms/{room}/versions` lists the named versions.
 * @module history
 */

import * as Y from 'yjs'

/**
 * @typedef {object} HistoryEntry
 * @property {number} seq
 * @property {number} ts
 * @property {string | null} user
 * @property {number} bytes
 */

/**
 * @typedef {object} HistoryPage
 * @property {string} room
 * @property {number} last_seq
 * @property {HistoryEntry[]} entries
 */

/**
 * @typedef {object} NamedVersion
 * @property {string} name
 * @property {number} seq
 */

/**
 * @typedef {object} HttpOptions
 * @property {string} baseUrl http(s) origin of the server, e.g. `http://127.0.0.1:8080`
 * @property {string | null} [token]
 * @property {typeof fetch} [fetch]
 */

/**
 * @param {HttpOptions} http
 * @param {string} path
 * @param {Record<string, string | number>} query
 * @returns {string}
 */
function endpoint (http, path, query) {
  const target = new URL(path, http.baseUrl)
  for (const [key, value] of Object.entries(query)) target.searchParams.set(key, String(value))
  if (http.token) target.searchParams.set('token', http.token)
  return target.toString()
}

/**
 * @param {HttpOptions} http
 * @param {string} url
 * @returns {Promise<Response>}
 */
async function get (http, url) {
  const response = await (http.fetch ?? fetch)(url, { cache: 'no-store' })
  if (!response.ok) {
    const detail = await response.text().catch(() => '')
    throw new Error(`GET ${url} failed: ${response.status} ${detail}`.trim())
  }
  return response
}

/**
 * @param {HttpOptions} http
 * @param {string} url
 * @param {unknown} body sent as JSON
 * @returns {Promise<any>} the JSON answer
 */
async function post (http, url, body) {
  const response = await (http.fetch ?? fetch)(url, {
    method: 'POST',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body)
  })
  if (!response.ok) {
    const detail = await response.text().catch(() => '')
    throw new Error(`POST ${url} failed: ${response.status} ${detail}`.trim())
  }
  return response.json()
}

/**
 * Fetch the room's log entries, following pages up to `maxEntries`.
 * @param {HttpOptions} http
 * @param {string} room
 * @param {{ after?: number, limit?: number, maxEntries?: number }} [options]
 * @returns {Promise<HistoryPage>}
 */
export async function fetchHistory (http, room, { after = 0, limit = 500, maxEntries = 5000 } = {}) {
  const path = `/v1/rooms/${encodeURIComponent(room)}/history`
  /** @type {HistoryEntry[]} */
  const entries = []
  let lastSeq = 0
  let cursor = after
  while (entries.length < maxEntries) {
    const response = await get(http, endpoint(http, path, { after: cursor, limit }))
    const page = /** @type {HistoryPage} */ (await response.json())
    lastSeq = page.last_seq
    entries.push(...page.entries)
    if (page.entries.length < limit) break
    const next = page.entries[page.entries.length - 1].seq
    if (next <= cursor) break
    cursor = next
  }
  return { room, last_seq: lastSeq, entries }
}

/**
 * The document as it was right after log entry `seq`, in a fresh Y.Doc.
 * @param {HttpOptions} http
 * @param {string} room
 * @param {number} seq
 * @returns {Promise<Y.Doc>}
 */
export async function fetchDocAt (http, room, seq) {
  const path = `/v1/rooms/${encodeURIComponent(room)}/state`
  const response = await get(http, endpoint(http, path, { at: seq }))
  const update = new Uint8Array(await response.arrayBuffer())
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  return doc
}

/**
 * Make the room's content what it was right after log entry `seq`. The server writes one forward
 * update (durable, broadcast, in the history under the caller with `restore_of`), so every open
 * client, this one included, gets the restored content through normal sync; edits made offline
 * meanwhile merge on top as usual.
 * @param {HttpOptions} http
 * @param {string} room
 * @param {number} seq
 * @returns {Promise<{ seq: number }>} the log entry of the restore
 */
export async function restoreVersion (http, room, seq) {
  const answer = await post(http, endpoint(http, `/v1/rooms/${encodeURIComponent(room)}/restore`, {}), { seq })
  return { seq: Number(answer.seq) }
}

/**
 * Label the room's current seq with `name`.
 * @param {HttpOptions} http
 * @param {string} room
 * @param {string} name
 * @returns {Promise<NamedVersion>}
 */
export async function nameVersion (http, room, name) {
  const answer = await post(http, endpoint(http, `/v1/rooms/${encodeURIComponent(room)}/versions`, {}), { name })
  return { name: String(answer.name), seq: Number(answer.seq) }
}

/**
 * The room's named versions, oldest first. A server without versions (404) has none.
 * @param {HttpOptions} http
 * @param {string} room
 * @returns {Promise<NamedVersion[]>}
 */
export async function fetchVersions (http, room) {
  // a room holds at most 1,000 names by default: one page of 1,000 is all of them
  const url = endpoint(http, `/v1/rooms/${encodeURIComponent(room)}/versions`, { limit: 1000 })
  const response = await (http.fetch ?? fetch)(url, { cache: 'no-store' })
  if (response.status === 404) return []
  if (!response.ok) {
    const detail = await response.text().catch(() => '')
    throw new Error(`GET ${url} failed: ${response.status} ${detail}`.trim())
  }
  const answer = await response.json()
  /** @type {unknown[]} */
  const list = Array.isArray(answer) ? answer : Array.isArray(answer?.versions) ? answer.versions : []
  return list
    .filter((/** @type {any} */ v) => v && typeof v.name === 'string' && Number.isFinite(Number(v.seq)))
    .map((/** @type {any} */ v) => ({ name: v.name, seq: Number(v.seq) }))
    .sort((a, b) => a.seq - b.seq)
}

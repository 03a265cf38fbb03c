/**
 * The console's only way to the server: the public REST and SSE routes, with the admin token the page was opened
 * with (`/console?token=...`) as a Bearer header, or `?token=` for EventSource (which cannot set headers).
 * Paths are relative to the page, so a server mounted under a prefix works unchanged.
 * @module api
 */

const token = new URLSearchParams(location.search).get('token')

export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

/** @returns {Record<string, string>} */
function authHeaders () {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

/** @param {string} path relative, e.g. `v1/rooms` */
export function url (path) {
  return new URL(path, location.href).toString()
}

/** @param {string} room @param {string} [tail] e.g. `/json` */
export function roomPath (room, tail = '') {
  return `v1/rooms/${encodeURIComponent(room)}${tail}`
}

/** @param {Response} response */
async function answer (response) {
  const text = await response.text()
  /** @type {any} */
  let body = null
  try { body = text ? JSON.parse(text) : null } catch { body = null }
  if (!response.ok) throw new ApiError(response.status, body?.error ?? `${response.status} ${text.slice(0, 200)}`)
  return body
}

/** @param {string} path @returns {Promise<any>} */
export async function getJson (path) {
  return answer(await fetch(url(path), { headers: authHeaders(), cache: 'no-store' }))
}

/** @param {string} path @param {unknown} body @returns {Promise<any>} */
export async function postJson (path, body) {
  return answer(await fetch(url(path), {
    method: 'POST',
    headers: { ...authHeaders(), 'Content-Type': 'application/json' },
    body: JSON.stringify(body)
  }))
}

/** @param {string} room @param {number} after @returns {string} the change feed's URL for EventSource */
export function feedUrl (room, after) {
  const query = new URLSearchParams({ after: String(after) })
  if (token) query.set('token', token)
  return url(`${roomPath(room, '/changes')}?${query}`)
}

/** @param {string} room @returns {string} the console's own link to a room page (keeps the token) */
export function roomLink (room) {
  return `${location.pathname}${location.search}#/room/${encodeURIComponent(room)}`
}

/** @returns {string} the console's rooms table link */
export function homeLink () {
  return `${location.pathname}${location.search}#/`
}

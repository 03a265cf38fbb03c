/**
 * Who and where: room and user name from the URL, a stable color per name.
 * @module identity
 */

const ADJECTIVES = ['quiet', 'brave', 'sunny', 'swift', 'clever', 'gentle', 'lucky', 'mellow']
const ANIMALS = ['otter', 'falcon', 'panda', 'lynx', 'heron', 'koala', 'fox', 'whale']

/** @returns {string} e.g. "sunny-heron-42" */
export function randomName () {
  /** @param {string[]} list */
  const pick = (list) => list[Math.floor(Math.random() * list.length)]
  return `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${Math.floor(Math.random() * 90) + 10}`
}

/**
 * Same name, same color, on every screen (no coordination needed).
 * @param {string} name
 * @returns {string} an hsl() color
 */
export function colorFor (name) {
  let hash = 0
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0
  return `hsl(${hash % 360} 65% 45%)`
}

/**
 * @param {string} value
 * @param {string} fallback
 * @returns {string}
 */
function clean (value, fallback) {
  const trimmed = value.trim().slice(0, 64)
  return trimmed.length > 0 ? trimmed : fallback
}

/**
 * Read `?room=&user=&token=`, filling in defaults. A generated name is written back into the
 * URL so a reload (even offline) keeps the same identity and own messages stay marked.
 * @param {Location} location
 * @param {History} history
 * @returns {{ room: string, user: string, token: string | null }}
 */
export function readIdentity (location, history) {
  const url = new URL(location.href)
  const room = clean(url.searchParams.get('room') ?? '', 'lobby')
  const user = clean(url.searchParams.get('user') ?? '', randomName())
  const token = url.searchParams.get('token')
  if (url.searchParams.get('room') !== room || url.searchParams.get('user') !== user) {
    url.searchParams.set('room', room)
    url.searchParams.set('user', user)
    history.replaceState(null, '', url)
  }
  return { room, user, token }
}

/**
 * @param {History} history
 * @param {Location} location
 * @param {string} user
 */
export function rememberUser (history, location, user) {
  const url = new URL(location.href)
  url.searchParams.set('user', user)
  history.replaceState(null, '', url)
}

/**
 * @param {number} ts milliseconds (or seconds, as written by some clients)
 * @returns {string}
 */
export function formatTime (ts) {
  const ms = ts < 1e12 ? ts * 1000 : ts
  const date = new Date(ms)
  if (Number.isNaN(date.getTime()) || ms <= 0) return ''
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

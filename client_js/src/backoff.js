/**
 * Reconnect delays: exponential backoff with jitter.
 *
 * y-websocket's own backoff is deterministic, so after a server restart every client would come
 * back in the same millisecond. Spreading reconnects ("equal jitter": half fixed, half random)
 * keeps the herd from hitting the server at once while still bounding the wait.
 * @module backoff
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} [minDelay] delay before the first retry, ms
 * @property {number} [maxDelay] cap, ms
 * @property {() => number} [random] source of randomness in [0, 1), injectable for tests
 */

/**
 * @param {number} attempt 0 for the first retry after a failure
 * @param {BackoffOptions} [options]
 * @returns {number} delay in ms, within [cap/2, cap] where cap = min(maxDelay, minDelay * 2^attempt)
 */
export function backoffDelay (attempt, { minDelay = 250, maxDelay = 10000, random = Math.random } = {}) {
  const exp = Math.min(maxDelay, minDelay * Math.pow(2, Math.max(0, Math.min(attempt, 30))))
  const half = exp / 2
  return Math.round(half + random() * half)
}

/** The one 44xx code that means "slow down", not "never": this client stopped reading (4408). */
const SLOW_DOWN_44XX = new Set([4408])

/**
 * Whether a server close means retrying cannot help (bad token, wrong room, malformed or too
 * large input, a frame over the server's limit: 1009). 44xx mirrors HTTP 4xx, except 4408
 * (slow consumer), which asks the client to slow down. The server's one error table
 * (engine/errors.py) is checked against this function by tests/server/test_error_table.py.
 * @param {number} code WebSocket close code
 * @returns {boolean}
 */
export function isPermanentClose (code) {
  return code === 1009 || (code >= 4400 && code < 4500 && !SLOW_DOWN_44XX.has(code))
}

/**
 * Whether the server asked us to back off (slow consumer, room unavailable): the
 * backoff then keeps growing even if the next connection syncs.
 * @param {number} code WebSocket close code
 * @returns {boolean}
 */
export function isSlowDownClose (code) {
  return SLOW_DOWN_44XX.has(code) || code === 4503
}

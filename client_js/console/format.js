/**
 * How numbers, sizes and times read in the console.
 * @module format
 */

/** @param {number} bytes */
export function size (bytes) {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

/** @param {number | null | undefined} ts epoch seconds */
export function time (ts) {
  if (!ts) return '—'
  const date = new Date(ts * 1000)
  const today = new Date().toDateString() === date.toDateString()
  return today ? date.toLocaleTimeString() : date.toLocaleString()
}

/** @param {number | null | undefined} ts epoch seconds, @returns {string} e.g. "12 s ago" */
export function ago (ts) {
  if (!ts) return '—'
  const seconds = Math.max(0, Date.now() / 1000 - ts)
  if (seconds < 60) return `${Math.round(seconds)} s ago`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`
  return `${Math.round(seconds / 86400)} d ago`
}

/** @param {string | null | undefined} user */
export function who (user) {
  return user ?? '(anonymous)'
}

/** A stable colour per user name, so a user reads the same in every chart. @param {string} name */
export function colorOf (name) {
  let hash = 0
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return `hsl(${hash % 360} 60% 45%)`
}

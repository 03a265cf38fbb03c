/**
 * What changed between two JSON views of a room, path by path.
 * @module diff
 */

/**
 * @typedef {object} Change
 * @property {'added' | 'removed' | 'changed'} kind
 * @property {string} path JSON Pointer style, e.g. `/messages/0/text`
 * @property {unknown} [before]
 * @property {unknown} [after]
 */

/** @param {unknown} value */
function isContainer (value) {
  return value !== null && typeof value === 'object'
}

/** @param {string} segment */
function escape (segment) {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1')
}

/**
 * Compare `before` and `after`; containers are walked, anything else compared as JSON. Arrays compare by index
 * (a Yjs array's JSON view has no identities to match), so an insert at the front reads as changes plus one add.
 * @param {unknown} before
 * @param {unknown} after
 * @param {string} [path]
 * @param {Change[]} [out]
 * @returns {Change[]}
 */
export function diffJson (before, after, path = '', out = []) {
  if (isContainer(before) && isContainer(after) && Array.isArray(before) === Array.isArray(after)) {
    const a = /** @type {Record<string, unknown>} */ (before)
    const b = /** @type {Record<string, unknown>} */ (after)
    const keys = Array.isArray(before)
      ? Array.from({ length: Math.max(before.length, /** @type {unknown[]} */ (after).length) }, (_, i) => String(i))
      : [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    for (const key of keys) {
      const child = `${path}/${escape(key)}`
      if (!(key in b)) out.push({ kind: 'removed', path: child, before: a[key] })
      else if (!(key in a)) out.push({ kind: 'added', path: child, after: b[key] })
      else diffJson(a[key], b[key], child, out)
    }
    return out
  }
  if (JSON.stringify(before) !== JSON.stringify(after)) out.push({ kind: 'changed', path: path || '/', before, after })
  return out
}

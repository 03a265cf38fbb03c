/**
 * A room's content as a collapsible JSON tree: native <details> elements, so it opens and closes with the keyboard
 * and needs no script to be usable. Which branches are open is kept by path across re-renders, so a live update
 * does not fold what the operator unfolded.
 * @module tree
 */
import { h } from '../demo/dom.js'

const MAX_CHILDREN = 500

export class JsonTree {
  /** @param {Record<string, string>} [attrs] e.g. the test id */
  constructor (attrs = {}) {
    /** @type {Set<string>} paths whose branch is open */
    this.open = new Set(['', '/'])
    /** @type {Set<string>} paths the operator closed (top levels start open) */
    this.closed = new Set()
    this.element = h('div', { class: 'json-tree', ...attrs })
  }

  /** @param {unknown} value */
  render (value) {
    this.element.replaceChildren(this.node('', value, 0))
  }

  /**
   * @param {string} path
   * @param {unknown} value
   * @param {number} depth
   * @param {string} [label]
   * @returns {HTMLElement}
   */
  node (path, value, depth, label) {
    const key = label === undefined ? null : h('span', { class: 'key', text: `${label}: ` })
    if (value === null || typeof value !== 'object') {
      return h('div', { class: 'leaf', 'data-path': path }, [key, h('span', { class: `value ${typeof value}`, text: JSON.stringify(value) })])
    }
    const entries = Array.isArray(value) ? value.map((v, i) => /** @type {[string, unknown]} */ ([String(i), v])) : Object.entries(value)
    const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`
    const details = h('details', { 'data-path': path }, [h('summary', {}, [key, h('span', { class: 'count', text: summary })])])
    details.open = !this.closed.has(path) && (this.open.has(path) || depth < 2)
    details.addEventListener('toggle', () => {
      if (details.open) { this.open.add(path); this.closed.delete(path) } else { this.open.delete(path); this.closed.add(path) }
    })
    for (const [childKey, child] of entries.slice(0, MAX_CHILDREN)) {
      details.append(this.node(`${path}/${childKey}`, child, depth + 1, childKey))
    }
    if (entries.length > MAX_CHILDREN) details.append(h('div', { class: 'more', text: `… ${entries.length - MAX_CHILDREN} more` }))
    return details
  }
}

/**
 * Who is here and who is typing, from y-protocols awareness ({user: {name, color}, typing}).
 * @module presence-view
 */

import { h } from './dom.js'
import { colorFor, formatTime } from './identity.js'

/**
 * @typedef {object} Peer
 * @property {number} clientId
 * @property {string} name
 * @property {string} color
 * @property {boolean} typing
 * @property {boolean} self
 */

/**
 * One entry per user name (several tabs of one person show once), self first.
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @returns {Peer[]}
 */
export function readPeers (awareness) {
  /** @type {Map<string, Peer>} */
  const byName = new Map()
  for (const [clientId, state] of awareness.getStates()) {
    const name = state?.user?.name
    if (typeof name !== 'string' || name.length === 0) continue
    const self = clientId === awareness.clientID
    const known = byName.get(name)
    const peer = {
      clientId,
      name,
      color: typeof state.user.color === 'string' ? state.user.color : colorFor(name),
      typing: Boolean(state.typing) || Boolean(known?.typing),
      self: self || Boolean(known?.self)
    }
    byName.set(name, peer)
  }
  return [...byName.values()].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name))
}

/**
 * @param {string[]} names
 * @returns {string} "" when nobody types
 */
export function typingText (names) {
  if (names.length === 0) return ''
  if (names.length === 1) return `${names[0]} is typing…`
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`
  return `${names.length} people are typing…`
}

/**
 * @param {HTMLElement} list
 * @param {HTMLElement} typing
 * @param {HTMLElement} counter
 * @returns {(peers: Array<Peer & { lastSeen?: number | null }>) => void} peers with a `lastSeen`
 *   time are shown as "last seen HH:MM" instead of online (see presence-book.js)
 */
export function createPresenceView (list, typing, counter) {
  return (peers) => {
    list.replaceChildren(...peers.map((peer) => {
      const away = typeof peer.lastSeen === 'number'
      const dot = h('span', { class: 'presence-dot' })
      dot.style.background = peer.color
      const classes = ['presence', peer.self ? 'self' : '', away ? 'away' : ''].filter(Boolean).join(' ')
      return h('li', { class: classes, 'data-testid': 'presence-user', 'data-name': peer.name, 'data-online': String(!away) }, [
        dot,
        h('span', { class: 'presence-name', text: peer.name }),
        peer.self ? h('span', { class: 'tag', text: 'you' }) : null,
        away ? h('span', { class: 'last-seen', text: `last seen ${formatTime(/** @type {number} */ (peer.lastSeen))}` }) : null,
        peer.typing && !peer.self && !away ? h('span', { class: 'tag typing-tag', text: 'typing' }) : null
      ])
    }))
    counter.textContent = String(peers.filter((peer) => typeof peer.lastSeen !== 'number').length)
    const text = typingText(peers.filter((peer) => peer.typing && !peer.self && typeof peer.lastSeen !== 'number').map((peer) => peer.name))
    typing.textContent = text
    typing.classList.toggle('active', text.length > 0)
  }
}

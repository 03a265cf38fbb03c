/**
 * The chat document schema, shared with the terminal chat (`performer chat`).
 *
 * Root `messages`: Y.Array of Y.Map {id, user, text, ts, reactions}. `reactions` is a flat Y.Map
 * created together with its message, keyed by emoji + TAB + user. Flat on purpose: two users who
 * concurrently create a nested per-emoji map would race on the key and one reaction would be lost.
 * @module model
 */

import * as Y from 'yjs'

export const REACTIONS = ['👍', '❤️', '😂', '🎉']

/**
 * @typedef {object} ChatMessage
 * @property {string} id
 * @property {string} user
 * @property {string} text
 * @property {number} ts milliseconds since the epoch
 * @property {{ emoji: string, count: number, users: string[] }[]} reactions one per emoji in REACTIONS order, then any others
 */

/**
 * @param {Y.Doc} doc
 * @returns {Y.Array<Y.Map<any>>}
 */
export function messagesOf (doc) {
  return doc.getArray('messages')
}

function newId () {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  return Math.random().toString(36).slice(2) + Date.now().toString(36)
}

/**
 * Append a message; the reactions map is created in the same transaction (see module doc).
 * @param {Y.Doc} doc
 * @param {{ user: string, text: string, ts?: number, id?: string }} message
 * @returns {string} the new message's id
 */
export function addMessage (doc, { user, text, ts = Date.now(), id = newId() }) {
  const entry = new Y.Map()
  entry.set('id', id)
  entry.set('user', user)
  entry.set('text', text)
  entry.set('ts', ts)
  entry.set('reactions', new Y.Map())
  doc.transact(() => messagesOf(doc).push([entry]))
  return id
}

/**
 * @param {Y.Doc} doc
 * @param {string} id
 * @returns {Y.Map<any> | null}
 */
export function findMessage (doc, id) {
  for (const entry of messagesOf(doc)) {
    if (entry instanceof Y.Map && entry.get('id') === id) return entry
  }
  return null
}

/**
 * Add `user`'s `emoji` on a message, or take it back if it is already there.
 * @param {Y.Doc} doc
 * @param {string} id message id
 * @param {string} emoji
 * @param {string} user
 * @returns {boolean} whether the reaction is now set
 */
export function toggleReaction (doc, id, emoji, user) {
  const reactions = findMessage(doc, id)?.get('reactions')
  if (!(reactions instanceof Y.Map)) return false
  const key = `${emoji}\t${user}`
  if (reactions.has(key)) {
    reactions.delete(key)
    return false
  }
  reactions.set(key, true)
  return true
}

/**
 * @param {Y.Map<any> | undefined} reactions
 * @returns {ChatMessage['reactions']}
 */
export function summarizeReactions (reactions) {
  /** @type {Map<string, string[]>} */
  const byEmoji = new Map(REACTIONS.map((emoji) => [emoji, []]))
  if (reactions instanceof Y.Map) {
    for (const key of reactions.keys()) {
      const tab = key.indexOf('\t')
      if (tab <= 0) continue
      const emoji = key.slice(0, tab)
      const users = byEmoji.get(emoji) ?? []
      users.push(key.slice(tab + 1))
      byEmoji.set(emoji, users)
    }
  }
  return [...byEmoji].map(([emoji, users]) => ({ emoji, count: users.length, users: users.sort() }))
}

/**
 * Plain snapshot of the chat, in document order; malformed entries are skipped, not fatal.
 * @param {Y.Doc} doc
 * @returns {ChatMessage[]}
 */
export function readMessages (doc) {
  /** @type {ChatMessage[]} */
  const out = []
  for (const entry of messagesOf(doc)) {
    if (!(entry instanceof Y.Map)) continue
    const id = entry.get('id')
    const text = entry.get('text')
    if (typeof id !== 'string' || typeof text !== 'string') continue
    out.push({
      id,
      text,
      user: String(entry.get('user') ?? '?'),
      ts: Number(entry.get('ts') ?? 0),
      reactions: summarizeReactions(entry.get('reactions'))
    })
  }
  return out
}

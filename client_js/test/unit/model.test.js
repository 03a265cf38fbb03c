import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { addMessage, readMessages, toggleReaction, REACTIONS } from '../../demo/model.js'
import { indexAtOrBefore } from '../../demo/history-view.js'

/** Exchange full state both ways, as a sync would. */
function merge (/** @type {Y.Doc} */ a, /** @type {Y.Doc} */ b) {
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)))
}

/** @param {ReturnType<typeof readMessages>[number]} message */
const countOf = (message, emoji = '👍') => message.reactions.find((r) => r.emoji === emoji)?.count

test('messages keep their fields and order, each with a reactions map', () => {
  const doc = new Y.Doc()
  addMessage(doc, { user: 'alice', text: 'hi', ts: 1000, id: 'm1' })
  addMessage(doc, { user: 'bob', text: 'hello', ts: 2000, id: 'm2' })
  const messages = readMessages(doc)
  assert.deepEqual(messages.map((m) => [m.id, m.user, m.text, m.ts]), [['m1', 'alice', 'hi', 1000], ['m2', 'bob', 'hello', 2000]])
  assert.deepEqual(messages[0].reactions.map((r) => r.emoji), REACTIONS)
  assert.ok(doc.getArray('messages').get(0).get('reactions') instanceof Y.Map)
})

test('concurrent reactions of two users on one message both survive the merge', () => {
  const a = new Y.Doc()
  const b = new Y.Doc()
  addMessage(a, { user: 'alice', text: 'vote', id: 'm1' })
  merge(a, b)
  toggleReaction(a, 'm1', '👍', 'alice')
  toggleReaction(b, 'm1', '👍', 'bob')
  toggleReaction(b, 'm1', '🎉', 'bob')
  merge(a, b)
  for (const doc of [a, b]) {
    const [message] = readMessages(doc)
    assert.equal(countOf(message), 2)
    assert.deepEqual(message.reactions.find((r) => r.emoji === '👍')?.users, ['alice', 'bob'])
    assert.equal(countOf(message, '🎉'), 1)
  }
})

test('toggling twice takes the reaction back', () => {
  const doc = new Y.Doc()
  addMessage(doc, { user: 'alice', text: 'x', id: 'm1' })
  assert.equal(toggleReaction(doc, 'm1', '❤️', 'alice'), true)
  assert.equal(toggleReaction(doc, 'm1', '❤️', 'alice'), false)
  assert.equal(countOf(readMessages(doc)[0], '❤️'), 0)
  assert.equal(toggleReaction(doc, 'missing', '❤️', 'alice'), false)
})

test('malformed entries written by another client are skipped, not fatal', () => {
  const doc = new Y.Doc()
  const messages = doc.getArray('messages')
  messages.push(['not a map'])
  const noText = new Y.Map()
  noText.set('id', 'x')
  messages.push([noText])
  addMessage(doc, { user: 'alice', text: 'ok', id: 'm1' })
  assert.deepEqual(readMessages(doc).map((m) => m.id), ['m1'])
})

test('the shipped emoji font covers every reaction emoji (app.css unicode-range)', async () => {
  const { readFile } = await import('node:fs/promises')
  const css = await readFile(new URL('../../demo/app.css', import.meta.url), 'utf8')
  const face = /@font-face\s*{[^}]*font-family:\s*"Performer Emoji"[^}]*}/.exec(css)
  assert.ok(face, 'app.css declares the "Performer Emoji" face')
  const range = /unicode-range:\s*([^;]+);/.exec(face[0])
  assert.ok(range, 'the face has a unicode-range')
  const covered = new Set(range[1].split(',').map((part) => parseInt(part.trim().replace(/^U\+/i, ''), 16)))
  for (const emoji of REACTIONS) {
    for (const char of emoji) {
      const code = /** @type {number} */ (char.codePointAt(0))
      assert.ok(covered.has(code), `U+${code.toString(16).toUpperCase()} of ${emoji} is in the unicode-range`)
    }
  }
})

test('a named version marks the last history entry at or before its seq', () => {
  const entries = [3, 5, 9].map((seq) => ({ seq, ts: 0, user: null, bytes: 1 }))
  assert.deepEqual([1, 3, 4, 5, 8, 9, 12].map((seq) => indexAtOrBefore(entries, seq)), [-1, 0, 0, 1, 1, 2, 2])
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Status } from '../../src/status.js'

test('subscribers get the current value at once and every real change, not repeats', () => {
  const status = new Status()
  /** @type {string[]} */
  const seen = []
  const unsubscribe = status.subscribe((s) => seen.push(`${s.state}/${s.pending}`))
  status.set({ state: 'connecting' })
  status.set({ state: 'connecting' })
  status.set({ pending: 2 })
  unsubscribe()
  status.set({ state: 'saved' })
  assert.deepEqual(seen, ['offline/0', 'connecting/0', 'connecting/2'])
})

test('until resolves on the first matching value and rejects at its deadline', async () => {
  const status = new Status()
  const saved = status.until((s) => s.state === 'saved', 1000)
  status.set({ state: 'synced' })
  status.set({ state: 'saved' })
  assert.equal((await saved).state, 'saved')
  await assert.rejects(status.until((s) => s.state === 'offline' && s.pending > 5, 30), /timed out/)
})

test('while syncing, the badge says how much has arrived, never "connecting"', async () => {
  const { statusText } = await import('../../demo/status-view.js')
  const base = { pending: 0, seq: 0, error: null, rejected: null }
  assert.equal(statusText({ ...base, state: 'syncing', received: 0 }), 'syncing…')
  const text = statusText({ ...base, state: 'syncing', received: 42_500_000 })
  assert.equal(text, 'syncing… 42.5 MB received')
  assert.doesNotMatch(text, /connecting/)
})

test('a rule\'s refusal shows in the badge, in the chat\'s words, beside the state', async () => {
  const { statusText } = await import('../../demo/status-view.js')
  const snapshot = { pending: 0, seq: 3, error: null, received: 0, state: /** @type {const} */ ('saved') }
  const text = statusText({ ...snapshot, rejected: 'rule: only the author can delete messages[0]' })
  assert.equal(text, 'saved · all changes stored · undone: only the author can delete this message')
  assert.equal(statusText({ ...snapshot, rejected: null }), 'saved · all changes stored')
})

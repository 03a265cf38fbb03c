import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelay, isPermanentClose, isSlowDownClose } from '../../src/backoff.js'

test('delay doubles per attempt between half and all of the exponential step', () => {
  const low = () => 0
  const high = () => 0.999999
  assert.equal(backoffDelay(0, { minDelay: 100, random: low }), 50)
  assert.equal(backoffDelay(0, { minDelay: 100, random: high }), 100)
  assert.equal(backoffDelay(3, { minDelay: 100, random: low }), 400)
  assert.equal(backoffDelay(3, { minDelay: 100, random: high }), 800)
})

test('delay never exceeds the cap however many attempts failed', () => {
  for (const attempt of [10, 50, 1000]) {
    const delay = backoffDelay(attempt, { minDelay: 100, maxDelay: 5000, random: () => 0.999999 })
    assert.ok(delay <= 5000 && delay >= 2500, `attempt ${attempt}: ${delay}`)
  }
})

test('jitter spreads clients that failed at the same moment', () => {
  const delays = new Set()
  for (let i = 0; i < 50; i++) delays.add(backoffDelay(4, { minDelay: 250 }))
  assert.ok(delays.size > 10, `only ${delays.size} distinct delays`)
})

test('auth, malformed and too-large closes are final; slow-down and transient ones are retried', () => {
  for (const code of [1009, 4400, 4401, 4403, 4413]) assert.equal(isPermanentClose(code), true, String(code))
  for (const code of [1000, 1001, 1006, 4408, 4500, 4503]) assert.equal(isPermanentClose(code), false, String(code))
  for (const code of [4408, 4503]) assert.equal(isSlowDownClose(code), true, String(code))
  for (const code of [1001, 1006, 4401]) assert.equal(isSlowDownClose(code), false, String(code))
})

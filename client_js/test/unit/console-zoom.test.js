/**
 * The console timeline's zoom math: spans stay inside what is loaded, zooming keeps the point under the cursor,
 * zooming out of everything gives everything (null), a drag selects the part between its ends.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MIN_WIDTH, clampSpan, fullSpan, panSpan, selectSpan, zoomSpan } from '../../console/zoom.js'

const full = { from: 100, to: 200 }

test('everything loaded is one span, at least MIN_WIDTH wide', () => {
  assert.equal(fullSpan([]), null)
  assert.deepEqual(fullSpan([{ ts: 100 }, { ts: 150 }, { ts: 200 }]), full)
  assert.deepEqual(fullSpan([{ ts: 5 }]), { from: 5, to: 5 + MIN_WIDTH })
})

test('zooming in halves the span around the point that stays put; out again gives everything', () => {
  assert.deepEqual(zoomSpan(full, full, 0.5), { from: 125, to: 175 })
  assert.deepEqual(zoomSpan(full, full, 0.5, 0), { from: 100, to: 150 })
  assert.deepEqual(zoomSpan(full, full, 0.5, 1), { from: 150, to: 200 })
  const quarter = zoomSpan(full, full, 0.5, 0.8)
  assert.deepEqual(quarter, { from: 140, to: 190 }) // 180 stays at 80 % across
  assert.equal(zoomSpan(/** @type {any} */ (quarter), full, 2), null)
  assert.equal(zoomSpan(full, full, 2), null)
})

test('zooming never goes below MIN_WIDTH nor outside what is loaded', () => {
  let span = /** @type {any} */ (full)
  for (let i = 0; i < 40; i++) span = zoomSpan(span, full, 0.5, 1)
  assert.ok(Math.abs(span.to - span.from - MIN_WIDTH) < 1e-9)
  assert.ok(Math.abs(span.to - 200) < 1e-9)
  assert.deepEqual(clampSpan({ from: 50, to: 70 }, full), { from: 100, to: 120 })
  assert.deepEqual(clampSpan({ from: 190, to: 230 }, full), { from: 160, to: 200 })
})

test('moving shifts by a fraction of the width and stops at the ends', () => {
  const span = { from: 140, to: 160 }
  assert.deepEqual(panSpan(span, full, -0.5), { from: 130, to: 150 })
  assert.deepEqual(panSpan(span, full, 0.5), { from: 150, to: 170 })
  assert.deepEqual(panSpan({ from: 100, to: 120 }, full, -0.5), { from: 100, to: 120 })
  assert.deepEqual(panSpan({ from: 190, to: 200 }, full, 3), { from: 190, to: 200 })
})

test('a drag selects the part of the span between its ends, in either direction', () => {
  assert.deepEqual(selectSpan(full, full, 0.6, 1), { from: 160, to: 200 })
  assert.deepEqual(selectSpan(full, full, 0.9, 0.2), { from: 120, to: 190 })
  assert.deepEqual(selectSpan({ from: 120, to: 140 }, full, -1, 0.5), { from: 120, to: 130 })
  assert.equal(selectSpan(full, full, 0, 1), null)
})

test('a span at an end ends exactly there, so the newest edit (at the very end) stays in it', () => {
  const real = { from: 1796543944.123, to: 1796543947.457 }
  let span = zoomSpan(real, real, 0.5, 0)
  for (let i = 0; i < 5; i++) span = panSpan(/** @type {any} */ (span), real, 0.5)
  assert.equal(span?.to, real.to)
  assert.equal(selectSpan(real, real, 0.5, 1)?.to, real.to)
  assert.equal(panSpan(/** @type {any} */ (span), real, -9)?.from, real.from)
})

test('zooming in on the middle and panning onto either end reaches that end exactly, whatever the epoch rounding', () => {
  let seed = 7
  const random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
  for (let i = 0; i < 2000; i++) {
    const from = 1796575222 + random() * 1000
    const full = { from, to: from + 0.1 + random() * 5 }
    const middle = /** @type {any} */ (zoomSpan(full, full, 0.5))
    const later = /** @type {any} */ (panSpan(panSpan(/** @type {any} */ (panSpan(middle, full, -0.5)), full, 0.5) ?? middle, full, 0.5))
    assert.equal(later.to, full.to, `later from ${JSON.stringify(full)}`)
    const earlier = /** @type {any} */ (panSpan(/** @type {any} */ (panSpan(middle, full, 0.5)), full, -1))
    assert.equal(earlier.from, full.from, `earlier from ${JSON.stringify(full)}`)
  }
})

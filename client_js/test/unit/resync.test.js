import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { watchPending } from '../../src/resync.js'

// Two writers' edits to text, array, map and xml, delivered shuffled and partly merged: Yjs
// 13.6 leaves some of them pending after everything arrived (found by fuzzing delivery orders,
// about one in ten thousand). The full document has clocks {1: 17, 2: 17}.
const STUCK_ORDER = [
  '010502040701017803017028000204016b01770262630700020406040002060262634401050262630101010c01',
  '0201020e2801016d0161017c43e0800001010f840201016100',
  '0207020001010174020801016102770262637701610701017803017028000204016b0177026263070002040604000206026263440105026263010110880203017701610102010002',
  '0107010008010161017701610701017803017028000101016b01770161070001010604000103016104010174026263880100017702626300',
  '010102000401017402626300',
  '01010107880100017702626300',
  '02010210c80100010701770378797a06010887010103017028000108016b0177016107000108060400010a01610a0144010c016100',
  '000102010101',
  '01010100080101610177016100',
  '0201020f880203017701610d01010701017803017028000101016b0177016107000101060400010301610a0387010103017028000108016b0177016107000108060400010a0161440209016144010c01612801016d0162017c439a8000840201016100',
  '02030203880202017701610a078402010378797a01010e2801016d0162017c439a800000',
  '010101050401017402626300',
  '0201020208010161017702626301010c440209016100',
  '000102010001'
]

/** @param {Y.Doc} doc */
const clocks = (doc) => Object.fromEntries(Y.decodeStateVector(Y.encodeStateVector(doc)))
const stuckDoc = () => {
  const doc = new Y.Doc()
  for (const hex of STUCK_ORDER) Y.applyUpdate(doc, Buffer.from(hex, 'hex'))
  return doc
}
const fullDoc = () => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.mergeUpdates(STUCK_ORDER.map((hex) => Buffer.from(hex, 'hex'))))
  return doc
}

test('yjs can stay behind with pending updates although nothing is missing', () => {
  const doc = stuckDoc()
  assert.notEqual(doc.store.pendingStructs, null)
  assert.deepEqual(clocks(doc), { 1: 12, 2: 9 })
  assert.deepEqual(clocks(fullDoc()), { 1: 17, 2: 17 })
  Y.applyUpdate(doc, /** @type {any} */ (doc.store.pendingStructs).update) // re-applying: no help
  assert.deepEqual(clocks(doc), { 1: 12, 2: 9 })
})

test('a stuck replica sends a step 1 once it waited longer than a resync, and heals', () => {
  let now = 1000
  /** @type {Uint8Array[]} */
  const sent = []
  const doc = stuckDoc()
  const provider = { doc, synced: true, wsconnected: true, ws: { send: (/** @type {Uint8Array} */ d) => sent.push(d) } }
  const watch = watchPending(provider, { now: () => now, checkMs: 60000 })
  try {
    assert.equal(watch.check(), false) // pending, but a sync may still be on its way
    now += 999
    assert.equal(watch.check(), false)
    now += 2
    assert.equal(watch.check(), true)
    const decoder = decoding.createDecoder(sent[0])
    assert.equal(decoding.readVarUint(decoder), 0) // sync
    assert.equal(decoding.readVarUint(decoder), 0) // step 1
    const stateVector = decoding.readVarUint8Array(decoder)
    assert.deepEqual(Object.fromEntries(Y.decodeStateVector(stateVector)), { 1: 12, 2: 9 })
    now += 1500
    assert.equal(watch.check(), false) // the next one waits twice as long
    now += 600
    assert.equal(watch.check(), true)
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(fullDoc(), stateVector)) // the server's step 2
    assert.deepEqual(clocks(doc), { 1: 17, 2: 17 })
    assert.equal(doc.store.pendingStructs, null)
    now += 120000
    assert.equal(watch.check(), false)
    assert.equal(watch.resyncs(), 2)
  } finally {
    watch.stop()
  }
})

test('nothing is sent while offline, before the first sync, or with nothing pending', () => {
  let now = 0
  const sent = []
  const provider = { doc: stuckDoc(), synced: false, wsconnected: true, ws: { send: (/** @type {Uint8Array} */ d) => sent.push(d) } }
  const watch = watchPending(provider, { now: () => now, checkMs: 60000 })
  try {
    now += 5000
    assert.equal(watch.check(), false)
    provider.synced = true
    provider.wsconnected = false
    now += 5000
    assert.equal(watch.check(), false)
    provider.wsconnected = true
    provider.doc = new Y.Doc()
    now += 5000
    assert.equal(watch.check(), false)
    assert.equal(sent.length, 0)
  } finally {
    watch.stop()
  }
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import { PendingTracker, isUpdateMessage, readSaved, MESSAGE_SAVED } from '../../src/ack.js'

/** @param {(encoder: encoding.Encoder, doc: Y.Doc) => void} write */
function syncFrame (write) {
  const doc = new Y.Doc()
  doc.getArray('a').push([1])
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 0)
  write(encoder, doc)
  return encoding.toUint8Array(encoder)
}

test('sync step 2 and sync update count as update messages; step 1 and awareness do not', () => {
  assert.equal(isUpdateMessage(syncFrame((e, d) => syncProtocol.writeSyncStep2(e, d))), true)
  assert.equal(isUpdateMessage(syncFrame((e, d) => syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(d)))), true)
  assert.equal(isUpdateMessage(syncFrame((e, d) => syncProtocol.writeSyncStep1(e, d))), false)
  assert.equal(isUpdateMessage(new Uint8Array([1, 2, 0, 0])), false)
  assert.equal(isUpdateMessage(new Uint8Array([0])), false)
  assert.equal(isUpdateMessage(new Uint8Array([0, 2, 9]).buffer), true)
  assert.equal(isUpdateMessage('text frame'), false)
})

test('saved message body decodes to count and seq', () => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SAVED)
  encoding.writeVarUint(encoder, 3)
  encoding.writeVarUint(encoder, 1234567)
  const decoder = decoding.createDecoder(encoding.toUint8Array(encoder))
  assert.equal(decoding.readVarUint(decoder), MESSAGE_SAVED)
  assert.deepEqual(readSaved(decoder), { count: 3, seq: 1234567 })
})

test('an ack confirms exactly the local changes covered by the acknowledged messages', () => {
  const tracker = new PendingTracker()
  tracker.change(); tracker.sent() // message 1 covers change 1
  tracker.change(); tracker.sent() // message 2 covers change 2
  tracker.change() // queued, not sent yet
  assert.equal(tracker.pending, 3)
  assert.equal(tracker.ack(1), true)
  assert.equal(tracker.pending, 2)
  tracker.sent() // message 3 covers change 3
  assert.equal(tracker.ack(3), true)
  assert.equal(tracker.pending, 0)
  assert.equal(tracker.ack(3), false, 'a repeated ack changes nothing')
})

test('a new connection counts from zero and its first step 2 covers everything queued', () => {
  const tracker = new PendingTracker(2) // two changes carried over from an earlier page load
  tracker.change(); tracker.sent()
  tracker.newConnection() // the ack for that message never came
  tracker.change()
  assert.equal(tracker.pending, 4)
  tracker.sent() // step 2 of the new connection
  assert.equal(tracker.ack(1), true)
  assert.equal(tracker.pending, 0)
})

test('an ack for more messages than were sent is clamped, and ack(0) is ignored', () => {
  const tracker = new PendingTracker()
  tracker.change(); tracker.sent()
  assert.equal(tracker.ack(0), false)
  assert.equal(tracker.ack(7), true)
  assert.equal(tracker.pending, 0)
})

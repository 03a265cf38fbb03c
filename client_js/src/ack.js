/**
 * Bookkeeping for the server's opt-in "saved" acknowledgement.
 *
 * The server sends `varuint(100) varuint(count) varuint(seq)` once the first `count`
 * update-carrying messages of a connection (sync step 2 and sync update) are durable. The client
 * therefore counts those messages per connection and remembers, for each one, how many local
 * changes it covered. An ack for `count` then confirms every local change covered by message
 * number `count`; everything after that is still pending.
 * @module ack
 */

import * as decoding from 'lib0/decoding'

export const MESSAGE_SYNC = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2
export const MESSAGE_SAVED = 100

/**
 * True when an outgoing frame carries document content the server will count.
 * @param {ArrayBuffer | ArrayBufferView | string | Blob} data
 * @returns {boolean}
 */
export function isUpdateMessage (data) {
  const bytes = toBytes(data)
  if (bytes === null || bytes.length < 2) return false
  // Both tags are single-byte varuints (0, 1, 2), so peeking at two bytes is exact.
  return bytes[0] === MESSAGE_SYNC && (bytes[1] === SYNC_STEP2 || bytes[1] === SYNC_UPDATE)
}

/**
 * @param {ArrayBuffer | ArrayBufferView | string | Blob} data
 * @returns {Uint8Array | null}
 */
function toBytes (data) {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return null
}

/**
 * Read the body of a saved message (the type tag already consumed).
 * @param {decoding.Decoder} decoder
 * @returns {{ count: number, seq: number }}
 */
export function readSaved (decoder) {
  const count = decoding.readVarUint(decoder)
  const seq = decoding.readVarUint(decoder)
  return { count, seq }
}

/**
 * Counts local changes and matches them against acknowledgements.
 *
 * `local` grows with every local change (and starts at the number of changes still unconfirmed
 * from an earlier page load); `confirmed` is how many of them the server has declared durable.
 */
export class PendingTracker {
  /** @param {number} [carried] unconfirmed changes inherited from an earlier session */
  constructor (carried = 0) {
    this.local = carried
    this.confirmed = 0
    /** @type {number[]} marks[i] = `local` when the connection's (i+1)-th update message was sent */
    this.marks = []
  }

  /** @returns {number} */
  get pending () { return this.local - this.confirmed }

  /** A local change happened (sent now or queued for the next connection). */
  change () { this.local += 1 }

  /** Earlier changes turned up (e.g. restored from disk) that the server may not have. */
  carry (/** @type {number} */ count) { this.local += count }

  /** A new connection starts counting its messages from zero. */
  newConnection () { this.marks = [] }

  /** An update-carrying message left on the current connection. */
  sent () { this.marks.push(this.local) }

  /**
   * @param {number} count how many update messages of this connection are durable
   * @returns {boolean} whether the pending count changed
   */
  ack (count) {
    if (count <= 0 || this.marks.length === 0) return false
    const covered = this.marks[Math.min(count, this.marks.length) - 1]
    if (covered <= this.confirmed) return false
    this.confirmed = covered
    return true
  }
}

/**
 * What a browser has and Node does not, for running browser examples in Node:
 * `node --import ./test/helpers/node-globals.js examples/connect-room.js`.
 */
import 'fake-indexeddb/auto'
import WebSocket from 'ws'

if (!('WebSocket' in globalThis)) {
  Object.assign(globalThis, { WebSocket })
}

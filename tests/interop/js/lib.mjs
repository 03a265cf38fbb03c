// Helpers shared by the interop client scripts: a stock y-websocket provider over `ws`,
// deadlines on every wait, and JSON output on stdout for the Python side.
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'

export { Y }

export const hex = (bytes) => Buffer.from(bytes).toString('hex')

/** Prints one JSON line; pipes are synchronous on Linux, so nothing is lost if killed later. */
export const emit = (value) => process.stdout.write(JSON.stringify(value) + '\n')

export const fail = (message) => {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

/** Opens a stock provider. BroadcastChannel is off so peers in one process talk only through
 * the server. */
export const connect = (serverUrl, room, { doc = new Y.Doc(), params = {} } = {}) => {
  const provider = new WebsocketProvider(serverUrl, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params
  })
  return { doc, provider, awareness: provider.awareness }
}

/** Resolves once `check()` is true, re-checking on every event of `sources`; rejects with
 * `label` after `ms`. */
export const waitFor = (label, check, ms, sources = []) => new Promise((resolve, reject) => {
  if (check()) return resolve()
  const timer = setTimeout(() => {
    cleanup()
    reject(new Error(`timed out after ${ms} ms waiting for ${label}`))
  }, ms)
  const listener = () => {
    if (check()) {
      cleanup()
      resolve()
    }
  }
  const cleanup = () => {
    clearTimeout(timer)
    for (const [source, event] of sources) source.off(event, listener)
  }
  for (const [source, event] of sources) source.on(event, listener)
})

export const waitSynced = (provider, ms) =>
  waitFor('the first sync', () => provider.synced, ms, [[provider, 'sync']])

/** Resolves once the doc satisfies `check`, re-checking after every update. */
export const waitDoc = (label, doc, check, ms) => waitFor(label, check, ms, [[doc, 'update']])

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The roots every interop scenario uses, as plain JSON. */
export const snapshot = (doc) => ({
  json: {
    text: doc.getText('text').toJSON(),
    list: doc.getArray('list').toJSON(),
    map: doc.getMap('map').toJSON()
  },
  state_vector: hex(Y.encodeStateVector(doc)),
  client_id: doc.clientID
})

/** Runs `main`, turning any rejection into a non-zero exit with the reason on stderr. */
export const run = (main) => {
  main().then(
    () => process.exit(0),
    (error) => fail(error && error.stack ? error.stack : String(error))
  )
}

export const args = () => {
  const out = {}
  for (const arg of process.argv.slice(2)) {
    const [key, ...rest] = arg.replace(/^--/, '').split('=')
    out[key] = rest.join('=')
  }
  return out
}

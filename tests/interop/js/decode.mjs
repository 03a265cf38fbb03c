// Decodes y-websocket messages with the real y-protocols and lib0 and prints what they hold.
//
// stdin: {"messages": [hex, ...], "roots": {"name": "text" | "array" | "map", ...}}
// stdout: [{"type": ..., ...fields}, ...], one entry per message. Sync messages are applied in
// order to one Y.Doc, whose listed roots are reported as `doc` after each step2 or update;
// integers that may exceed 2^31 are strings so JSON keeps them exact.
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'

const SYNC_TYPES = ['sync_step1', 'sync_step2', 'update']

const hex = (bytes) => Buffer.from(bytes).toString('hex')

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const rootsJson = (doc, roots) => {
  const out = {}
  for (const [name, kind] of Object.entries(roots)) {
    const type = kind === 'text' ? doc.getText(name) : kind === 'array' ? doc.getArray(name) : doc.getMap(name)
    out[name] = type.toJSON()
  }
  return out
}

const doc = new Y.Doc()

const decodeSync = (bytes, roots) => {
  // Peek with lib0 for the raw payload, then let y-protocols handle the whole message.
  const peek = decoding.createDecoder(bytes)
  decoding.readVarUint(peek)
  const step = decoding.readVarUint(peek)
  const payload = decoding.readVarUint8Array(peek)
  const decoder = decoding.createDecoder(bytes)
  decoding.readVarUint(decoder)
  const reply = encoding.createEncoder()
  const handled = syncProtocol.readSyncMessage(decoder, reply, doc, 'decode')
  const result = { type: SYNC_TYPES[handled], step, payload: hex(payload), rest: decoder.arr.length - decoder.pos }
  if (handled === syncProtocol.messageYjsSyncStep1) {
    const sv = Y.decodeStateVector(payload)
    result.state_vector = Object.fromEntries(Array.from(sv, ([client, clock]) => [String(client), clock]))
  } else {
    result.doc = rootsJson(doc, roots)
  }
  return result
}

const decodeAwareness = (decoder) => {
  const payload = decoding.readVarUint8Array(decoder)
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awarenessProtocol.applyAwarenessUpdate(awareness, payload, 'decode')
  const states = {}
  awareness.getStates().forEach((state, client) => {
    if (client !== awareness.clientID) states[String(client)] = state
  })
  awareness.destroy()
  const inner = decoding.createDecoder(payload)
  const entries = []
  const count = decoding.readVarUint(inner)
  for (let i = 0; i < count; i++) {
    entries.push({
      client_id: String(decoding.readVarUint(inner)),
      clock: String(decoding.readVarUint(inner)),
      state_json: decoding.readVarString(inner)
    })
  }
  return { type: 'awareness', payload: hex(payload), entries, states }
}

const decodeMessage = (bytes, roots) => {
  const decoder = decoding.createDecoder(bytes)
  const kind = decoding.readVarUint(decoder)
  let result
  if (kind === 0) {
    return decodeSync(bytes, roots)
  } else if (kind === 1) {
    result = decodeAwareness(decoder)
  } else if (kind === 2) {
    result = { type: 'unknown auth message' }
    authProtocol.readAuthMessage(decoder, new Y.Doc(), (_doc, reason) => {
      result = { type: 'permission_denied', reason }
    })
  } else if (kind === 3) {
    result = { type: 'query_awareness' }
  } else if (kind === 100) {
    result = { type: 'saved', count: String(decoding.readVarUint(decoder)), seq: String(decoding.readVarUint(decoder)) }
  } else {
    result = { type: `unknown ${kind}` }
  }
  result.rest = decoder.arr.length - decoder.pos
  return result
}

const input = await readStdin()
const decoded = input.messages.map((h) => decodeMessage(new Uint8Array(Buffer.from(h, 'hex')), input.roots || {}))
process.stdout.write(JSON.stringify(decoded), () => process.exit(0))

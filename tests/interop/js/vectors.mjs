// Prints protocol test vectors made by the real y-protocols, lib0 and Yjs as JSON on stdout.
//
// Three groups: framed messages (`messages`) with the fields a decoder must find in them,
// awareness payloads (`awareness`) with their entries, and bare Yjs updates (`updates`) with
// the client ids that authored structs in them. Bytes are hex strings.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1
const MESSAGE_AUTH = 2
const MESSAGE_QUERY_AWARENESS = 3
const MESSAGE_SAVED = 100

const hex = (bytes) => Buffer.from(bytes).toString('hex')

const frame = (write) => {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

const docWithClient = (clientID) => {
  const doc = new Y.Doc()
  doc.clientID = clientID
  return doc
}

/** A document with a bit of every common type, edited by two clients. */
const sampleDoc = () => {
  const doc = docWithClient(1001)
  const other = docWithClient(2002)
  doc.getText('text').insert(0, 'héllo wörld 👋')
  doc.getArray('list').push([1, 'two', { three: 3 }])
  other.getMap('map').set('key', 'välue ✓')
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(other))
  return doc
}

const sampleJson = (doc) => ({
  text: doc.getText('text').toJSON(),
  list: doc.getArray('list').toJSON(),
  map: doc.getMap('map').toJSON()
})

const messageVectors = () => {
  const doc = sampleDoc()
  const empty = new Y.Doc()
  const half = docWithClient(1001)
  half.getText('text').insert(0, 'hé')
  const halfSv = Y.encodeStateVector(half)
  const update = (() => {
    let captured = null
    doc.once('update', (u) => { captured = u })
    doc.getText('text').insert(0, '🚀 ')
    return captured
  })()
  const vectors = []
  const add = (name, bytes, expect) => vectors.push({ name, hex: hex(bytes), expect })
  add('sync step1 of an empty doc', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(e, empty)
  }), { type: 'sync_step1', payload: hex(Y.encodeStateVector(empty)) })
  add('sync step1 of a doc with two clients', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(e, doc)
  }), { type: 'sync_step1', payload: hex(Y.encodeStateVector(doc)) })
  add('sync step2 with the whole doc', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC)
    syncProtocol.writeSyncStep2(e, doc)
  }), { type: 'sync_step2', payload: hex(Y.encodeStateAsUpdate(doc)), doc: sampleJson(doc) })
  add('sync step2 answering a partial state vector', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC)
    syncProtocol.writeSyncStep2(e, doc, halfSv)
  }), { type: 'sync_step2', payload: hex(Y.encodeStateAsUpdate(doc, halfSv)) })
  add('sync update with an emoji insert', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC)
    syncProtocol.writeUpdate(e, update)
  }), { type: 'update', payload: hex(update) })
  const big = new Y.Doc()
  big.getText('text').insert(0, 'x'.repeat(70000))
  const bigUpdate = Y.encodeStateAsUpdate(big)
  add('sync update longer than 2^16 bytes', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC)
    syncProtocol.writeUpdate(e, bigUpdate)
  }), { type: 'update', payload: hex(bigUpdate) })
  for (const reason of ['read-only token', 'Zugriff verweigert: schreibgeschützt 🔒', '']) {
    add(`auth permission denied: ${JSON.stringify(reason)}`, frame((e) => {
      encoding.writeVarUint(e, MESSAGE_AUTH)
      authProtocol.writePermissionDenied(e, reason)
    }), { type: 'permission_denied', reason })
  }
  add('query awareness', frame((e) => encoding.writeVarUint(e, MESSAGE_QUERY_AWARENESS)),
    { type: 'query_awareness' })
  const awareness = new awarenessProtocol.Awareness(docWithClient(3003))
  awareness.setLocalState({ user: { name: 'Zoë 🎉', color: '#ff8800' }, typing: true })
  const payload = awarenessProtocol.encodeAwarenessUpdate(awareness, [3003])
  add('awareness with an emoji name', frame((e) => {
    encoding.writeVarUint(e, MESSAGE_AWARENESS)
    encoding.writeVarUint8Array(e, payload)
  }), { type: 'awareness', payload: hex(payload) })
  const bigNumbers = [
    [0, 0], [127, 128], [16383, 16384], [2 ** 32 - 1, 2 ** 32],
    [2 ** 53 - 1, 2 ** 53 - 1], [2 ** 53, 2 ** 52 + 1]
  ]
  for (const [count, seq] of bigNumbers) {
    add(`saved count=${count} seq=${seq}`, frame((e) => {
      encoding.writeVarUint(e, MESSAGE_SAVED)
      encoding.writeVarUint(e, count)
      encoding.writeVarUint(e, seq)
    }), { type: 'saved', count: String(count), seq: String(seq) })
  }
  return vectors
}

const awarenessVectors = () => {
  const vectors = []
  const add = (name, payload) => {
    vectors.push({ name, hex: hex(payload), entries: decodeEntries(payload) })
  }
  const a = new awarenessProtocol.Awareness(docWithClient(11))
  a.setLocalState({ user: { name: 'Ana', color: '#30bced' }, typing: false })
  add('one client', awarenessProtocol.encodeAwarenessUpdate(a, [11]))
  a.setLocalState({
    user: { name: '李小龙 🐉', color: '#6eeb83' },
    typing: true,
    note: 'tab\tquote" backslash\\ newline\n nul\u0000 surrogate 𝄞'
  })
  add('unicode, escapes and a later clock', awarenessProtocol.encodeAwarenessUpdate(a, [11]))
  const b = new awarenessProtocol.Awareness(docWithClient(4294967295))
  b.setLocalState({ user: { name: 'Max', color: '#000' }, n: 1.5, list: [null, true, 2] })
  awarenessProtocol.applyAwarenessUpdate(a, awarenessProtocol.encodeAwarenessUpdate(b, [4294967295]), 'test')
  add('two clients, one with the largest uint32 id', awarenessProtocol.encodeAwarenessUpdate(a, [11, 4294967295]))
  awarenessProtocol.removeAwarenessStates(b, [4294967295], 'test')
  add('a removed state encodes as null', awarenessProtocol.encodeAwarenessUpdate(b, [4294967295]))
  add('an empty update', awarenessProtocol.encodeAwarenessUpdate(a, []))
  add('a clock near 2^53', frame((e) => {
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, 7)
    encoding.writeVarUint(e, 2 ** 53 - 1)
    encoding.writeVarString(e, JSON.stringify({ user: { name: 'ß' } }))
  }))
  return vectors
}

/** Reads entries with lib0 itself, so the expectation does not come from our decoder. */
const decodeEntries = (payload) => {
  const { createDecoder, readVarUint, readVarString } = decodingModule
  const decoder = createDecoder(payload)
  const entries = []
  const count = readVarUint(decoder)
  for (let i = 0; i < count; i++) {
    const clientId = readVarUint(decoder)
    const clock = readVarUint(decoder)
    entries.push({ client_id: String(clientId), clock: String(clock), state_json: readVarString(decoder) })
  }
  return entries
}
const decodingModule = await import('lib0/decoding')

/** Updates that exercise every struct and content kind Yjs writes in v1. */
const updateVectors = () => {
  const vectors = []
  const add = (name, update) => {
    const meta = Y.parseUpdateMeta(update)
    const decoded = Y.decodeUpdate(update)
    vectors.push({
      name,
      hex: hex(update),
      // client id -> [first clock, end clock) of the structs it authored in this update
      ranges: Object.fromEntries(Array.from(meta.from, ([client, start]) => [String(client), [start, meta.to.get(client)]])),
      deletes: decoded.ds.clients.size > 0,
      skips: decoded.structs.some((struct) => struct instanceof Y.Skip)
    })
  }
  const fresh = (clientID, edit) => {
    const doc = docWithClient(clientID)
    edit(doc)
    return doc
  }
  add('empty doc', Y.encodeStateAsUpdate(new Y.Doc()))
  add('text', Y.encodeStateAsUpdate(fresh(1, (d) => d.getText('t').insert(0, 'hello 👋 wörld'))))
  add('array of any values', Y.encodeStateAsUpdate(fresh(2, (d) => d.getArray('a').push([
    0, -1, 63, 64, -65, 2 ** 31, -(2 ** 31) - 1, 1.5, -0.25, 2 ** 60,
    'str', '', true, false, null, { big: 1234567890123456789n, missing: undefined }, [1, [2, [3]]], { k: { nested: [{}] } },
    new Uint8Array([0, 255, 7])
  ]))))
  add('map with every value kind', Y.encodeStateAsUpdate(fresh(3, (d) => {
    const m = d.getMap('m')
    m.set('n', 42)
    m.set('s', 'ünïcode')
    m.set('o', { deep: { deeper: [1, 2, 3] } })
    m.set('b', new Uint8Array([1, 2, 3]))
    m.set('n', 43)
  })))
  add('nested shared types', Y.encodeStateAsUpdate(fresh(4, (d) => {
    const inner = new Y.Map()
    d.getMap('root').set('inner', inner)
    const arr = new Y.Array()
    inner.set('arr', arr)
    const text = new Y.Text()
    arr.push([text, 'plain'])
    text.insert(0, 'nested text')
    inner.set('gone', new Y.Map())
    inner.delete('gone')
  })))
  add('xml fragment, elements, attributes, text', Y.encodeStateAsUpdate(fresh(5, (d) => {
    const frag = d.getXmlFragment('prosemirror')
    const p = new Y.XmlElement('paragraph')
    p.setAttribute('align', 'center')
    const t = new Y.XmlText()
    t.insert(0, 'bold', { bold: true })
    t.insert(4, ' plain')
    p.insert(0, [t])
    frag.insert(0, [p, new Y.XmlElement('hr')])
  })))
  add('xml hooks', Y.encodeStateAsUpdate(fresh(5, (d) => {
    const hook = new Y.XmlHook('custom-hook')
    hook.set('k', 'v')
    d.getXmlFragment('prosemirror').insert(0, [hook, new Y.XmlHook('empty-hook'), new Y.XmlElement('hr')])
  })))
  add('formatted text and embeds', Y.encodeStateAsUpdate(fresh(6, (d) => {
    const t = d.getText('rich')
    t.insert(0, 'Hello world', { bold: true })
    t.format(0, 5, { italic: true, color: '#f00' })
    t.insertEmbed(5, { image: 'https://example.invalid/a.png' }, { width: 100 })
    t.insertEmbed(6, new Y.Map())
    t.delete(1, 2)
  })))
  add('subdocument', Y.encodeStateAsUpdate(fresh(7, (d) => {
    const sub = new Y.Doc({ guid: 'sub-guid-ü', meta: { title: 'child' } })
    d.getMap('docs').set('child', sub)
    d.getArray('subs').push([new Y.Doc({ shouldLoad: false })])
  })))
  const gcDoc = fresh(8, (d) => {
    d.getMap('m').set('arr', Y.Array.from([1, 2, 3]))
    d.getMap('m').get('arr').push([new Y.Text('x')])
    d.getMap('m').delete('arr')
    d.getText('t').insert(0, 'abcdef')
    d.getText('t').delete(1, 3)
  })
  add('deletions and garbage-collected structs', Y.encodeStateAsUpdate(gcDoc))
  const a = fresh(9, (d) => d.getText('t').insert(0, 'from nine'))
  const b = fresh(4294967295, (d) => d.getText('t').insert(0, 'from max id'))
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
  a.getText('t').insert(3, ' and ')
  add('two authors, the largest client id, and a deleting third client', Y.encodeStateAsUpdate(fresh(10, (d) => {
    Y.applyUpdate(d, Y.encodeStateAsUpdate(a))
    d.getText('t').delete(0, 2)
  })))
  const updates = []
  const gappy = docWithClient(12)
  gappy.on('update', (u) => updates.push(u))
  for (let i = 0; i < 4; i++) gappy.getArray('a').push([i])
  add('merged updates with a gap (skip struct)', Y.mergeUpdates([updates[0], updates[2], updates[3]]))
  const onlyDelete = docWithClient(13)
  onlyDelete.getText('t').insert(0, 'abc')
  const before = Y.encodeStateVector(onlyDelete)
  onlyDelete.getText('t').delete(0, 1)
  add('a delete-only diff', Y.encodeStateAsUpdate(onlyDelete, before))
  return vectors
}

const output = JSON.stringify({
  messages: messageVectors(),
  awareness: awarenessVectors(),
  updates: updateVectors()
})
// Awareness instances keep an interval timer alive: exit once stdout is flushed.
process.stdout.write(output, () => process.exit(0))

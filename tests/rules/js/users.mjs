// Stock Yjs replicas of several users, for the rules property test, driven over
// stdin/stdout with JSON lines. Each user's doc makes edits the way a browser app would
// (Y.Map messages in a Y.Array, reactions in a Y.Map, a profiles Y.Map) and returns the
// updates they produced; updates the server relays are applied as they come.
// A root text is written with `write` and read back as a delta with `delta`.
// Commands: {op, user, ...} -> one JSON line {ok: true, ...} or {ok: false, error}.
import { createRequire } from 'node:module'
import readline from 'node:readline'

const require = createRequire(new URL('../../interop/package.json', import.meta.url))
const Y = require('yjs')

const docs = new Map()

function docOf (user) {
  if (!docs.has(user)) docs.set(user, new Y.Doc())
  return docs.get(user)
}

function edit (user, change) {
  const doc = docOf(user)
  const updates = []
  const listener = (update, origin) => { if (origin !== 'remote') updates.push(Buffer.from(update).toString('base64')) }
  doc.on('update', listener)
  try {
    doc.transact(() => change(doc))
  } finally {
    doc.off('update', listener)
  }
  return { updates }
}

const messages = (doc) => doc.getArray('messages')

const ops = {
  reset: () => { docs.clear() },
  client_id: ({ user }) => ({ client_id: docOf(user).clientID }),
  apply: ({ user, update }) => { Y.applyUpdate(docOf(user), Buffer.from(update, 'base64'), 'remote') },
  post: ({ user, author, text }) => edit(user, (doc) => {
    const message = new Y.Map()
    message.set('user', author)
    message.set('text', text)
    message.set('reactions', new Y.Map())
    messages(doc).push([message])
  }),
  delete: ({ user, at }) => edit(user, (doc) => messages(doc).delete(at, 1)),
  text: ({ user, at, text }) => edit(user, (doc) => messages(doc).get(at).set('text', text)),
  react: ({ user, at, key, on }) => edit(user, (doc) => {
    const reactions = messages(doc).get(at).get('reactions')
    if (on) reactions.set(key, true); else reactions.delete(key)
  }),
  profile: ({ user, key, value }) => edit(user, (doc) => {
    if (value === null) doc.getMap('profiles').delete(key); else doc.getMap('profiles').set(key, value)
  }),
  write: ({ user, root, at, remove, insert, attributes }) => edit(user, (doc) => {
    const text = doc.getText(root)
    if (remove) text.delete(at, remove)
    if (insert) text.insert(at, insert, attributes || undefined)
  }),
  delta: ({ user, root }) => ({ delta: docOf(user).getText(root).toDelta() }),
  state: ({ user }) => {
    const doc = docOf(user)
    return { messages: messages(doc).toJSON(), profiles: doc.getMap('profiles').toJSON() }
  },
  quit: () => { setImmediate(() => process.exit(0)) }
}

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  const command = JSON.parse(line)
  try {
    const result = await ops[command.op](command)
    process.stdout.write(JSON.stringify({ ok: true, ...(result || {}) }) + '\n')
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.stack || error) }) + '\n')
  }
}

// A stock Yjs client (y-websocket WebsocketProvider) that joins a chat room, posts one
// message in the shared schema, and waits for a given text and a given peer's presence.
// Usage: node chat_peer.mjs WS_BASE ROOM NAME TEXT WAIT_TEXT WAIT_PEER
// Prints one JSON line {messages, peers} and exits 0, or exits 1 after its deadline.
import { createRequire } from 'node:module'

const require = createRequire(new URL('../../interop/package.json', import.meta.url))
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')

const [base, room, name, text, waitText, waitPeer] = process.argv.slice(2)
const deadline = setTimeout(() => {
  console.error(`deadline: messages=${JSON.stringify(messages.toJSON())}`)
  process.exit(1)
}, 20000)

const doc = new Y.Doc()
const messages = doc.getArray('messages')
const provider = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: WebSocket })
provider.awareness.setLocalState({ user: { name, color: '#00aa00' }, typing: true })

const peers = () =>
  [...provider.awareness.getStates().values()].map((s) => s.user && s.user.name).filter(Boolean)

const check = () => {
  const texts = messages.toArray().map((m) => m.get('text'))
  if (texts.includes(waitText) && peers().includes(waitPeer)) {
    clearTimeout(deadline)
    console.log(JSON.stringify({ messages: messages.toJSON(), peers: peers() }))
    // Stay present a moment: presence is relayed in short windows, and a peer that
    // leaves within one is never announced.
    setTimeout(() => { provider.destroy(); process.exit(0) }, 1000)
  }
}

provider.once('sync', () => {
  const message = new Y.Map()
  message.set('id', `node-${doc.clientID}`)
  message.set('user', name)
  message.set('text', text)
  message.set('ts', Date.now())
  message.set('reactions', new Y.Map())
  messages.push([message])
  messages.observeDeep(check)
  provider.awareness.on('change', check)
  check()
})

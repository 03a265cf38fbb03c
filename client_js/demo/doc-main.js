// @ts-check
/**
 * The rich-text page (`/doc?room=NAME&user=NAME`): Tiptap over @hocuspocus/provider, as any
 * Tiptap app would write it, pointed at this server's /hocuspocus. Offline first like the
 * chat: the document lives in IndexedDB (y-indexeddb) and edits made offline are sent on
 * reconnect. The badge says "saved" only when the provider counts no unsynced change, which
 * the server answers only after its durable commit.
 * @module doc-main
 */
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import { HocuspocusProvider, WebSocketStatus } from '@hocuspocus/provider'
import { IndexeddbPersistence } from 'y-indexeddb'
import * as Y from 'yjs'
import { createStatusView } from './status-view.js'

const COLORS = ['#6d5efc', '#e91e63', '#00a884', '#f59e0b', '#0ea5e9', '#8b5cf6']

const params = new URLSearchParams(location.search)
const room = params.get('room') || 'notes'
const user = params.get('user') || 'guest'
const color = COLORS[[...user].reduce((sum, char) => sum + (char.codePointAt(0) ?? 0), 0) % COLORS.length]

const doc = new Y.Doc()
const local = new IndexeddbPersistence(`performer-doc:${room}`, doc)
const provider = new HocuspocusProvider({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/hocuspocus`,
  name: room,
  document: doc,
  token: params.get('token') ?? ''
})
const socket = provider.configuration.websocketProvider

const editor = new Editor({
  element: /** @type {HTMLElement} */ (document.getElementById('editor')),
  editorProps: { attributes: { 'data-testid': 'editor', 'aria-label': `Document ${room}` } },
  extensions: [
    StarterKit.configure({ undoRedo: false }), // Collaboration brings its own undo
    Collaboration.configure({ document: doc }),
    CollaborationCaret.configure({ provider, user: { name: user, color } })
  ]
})

for (const button of document.querySelectorAll('[data-command]')) {
  button.addEventListener('click', () => {
    const command = /** @type {HTMLElement} */ (button).dataset.command
    const chain = editor.chain().focus()
    if (command === 'toggleBold') chain.toggleBold().run()
    if (command === 'toggleItalic') chain.toggleItalic().run()
    if (command === 'toggleHeading') chain.toggleHeading({ level: 2 }).run()
    if (command === 'toggleBulletList') chain.toggleBulletList().run()
  })
}

/** @type {HTMLElement} */ (document.getElementById('room-title')).textContent = room
document.title = `${room} · Performer document`
const showStatus = createStatusView(/** @type {HTMLElement} */ (document.querySelector('[data-testid="connection-status"]')))

/** The chat's states, read from the provider: offline, connecting, syncing, synced, saved. */
function refreshStatus () {
  const pending = provider.unsyncedChanges
  /** @type {import('../src/status.js').ConnectionState} */
  let state = 'offline'
  if (navigator.onLine === false || socket.status === WebSocketStatus.Disconnected) state = 'offline'
  else if (socket.status === WebSocketStatus.Connecting) state = 'connecting'
  else if (!provider.synced) state = 'syncing'
  else state = pending > 0 ? 'synced' : 'saved'
  const offlinePending = state === 'offline' && local.synced ? Math.max(pending, 0) : 0
  showStatus({ state, pending: state === 'offline' ? offlinePending : pending, seq: 0, error: null, received: 0, rejected: null })
}
for (const event of ['status', 'synced', 'unsyncedChanges', 'close', 'disconnect']) provider.on(event, refreshStatus)
socket.on('status', refreshStatus)

// Like the chat: no network, no socket (and straight back when the network returns), so
// the badge says "offline" at once instead of after the provider's 30 s silence check.
window.addEventListener('offline', () => { socket.disconnect(); refreshStatus() })
window.addEventListener('online', () => { connectOnceClosed(); refreshStatus() })

/**
 * Connect again once the socket closed before going offline has finished closing. While its
 * close is still on its way the provider calls itself connected, so its `connect()` would
 * return at once, and when the close then lands it would not reconnect by itself (we asked
 * it to disconnect): the tab would stay offline for good.
 */
function connectOnceClosed () {
  if (socket.status !== WebSocketStatus.Connected) {
    socket.connect()
    return
  }
  const whenClosed = () => {
    socket.off('disconnect', whenClosed)
    if (navigator.onLine !== false) socket.connect()
  }
  socket.on('disconnect', whenClosed)
}
if (navigator.onLine === false) socket.disconnect()
refreshStatus()

if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(() => {})

// For people poking at it from the console (and for tests).
Object.assign(window, { performerDoc: { editor, doc, provider } })

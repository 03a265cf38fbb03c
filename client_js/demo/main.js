/**
 * The chat demo: wires the client library to the views. Served by the server at `/`.
 * @module main
 */

import { connectRoom } from '../src/connect.js'
import { addMessage, messagesOf, readMessages, toggleReaction } from './model.js'
import { createMessagesView } from './messages-view.js'
import { createPresenceView, readPeers } from './presence-view.js'
import { createStatusView } from './status-view.js'
import { PresenceBook, REJOIN_GRACE_MS } from './presence-book.js'
import { createHistoryView } from './history-view.js'
import { colorFor, readIdentity, rememberUser } from './identity.js'
import { $ } from './dom.js'

/** Typing counts as stopped after this long without a keystroke. */
const TYPING_IDLE_MS = 2500

function main () {
  const identity = readIdentity(window.location, window.history)
  let me = identity.user
  const wsBase = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/rooms`
  const room = connectRoom({ url: wsBase, room: identity.room, token: identity.token, user: { name: me, color: colorFor(me) } })
  exposeForDebugging(room)

  const input = /** @type {HTMLInputElement} */ ($(document, '[data-testid=message-input]'))
  const form = /** @type {HTMLFormElement} */ ($(document, '#composer'))
  const nameInput = /** @type {HTMLInputElement} */ ($(document, '#user-name'))
  const roomInput = /** @type {HTMLInputElement} */ ($(document, '#room-name'))
  const chat = $(document, '#chat')
  document.title = `#${identity.room} · Performer chat`
  nameInput.value = me
  roomInput.value = identity.room
  $(document, '#room-title').textContent = `# ${identity.room}`

  const messages = createMessagesView($(document, '#messages'), {
    me: () => me,
    onReact: (id, emoji) => toggleReaction(room.doc, id, emoji, me)
  })
  const renderMessages = () => messages.render(readMessages(room.doc))
  messagesOf(room.doc).observeDeep(renderMessages)
  renderMessages()

  const renderPresence = createPresenceView($(document, '#presence'), $(document, '[data-testid=typing-indicator]'), $(document, '#presence-count'))
  const presence = new PresenceBook()
  /** @type {ReturnType<typeof setTimeout> | null} */
  let rejoinTimer = null
  const refreshPresence = () => {
    // Connected = an open socket and a browser that says it is online. Read from the provider, not
    // the status: y-websocket drops the other clients' awareness before it reports the close.
    const live = room.provider.wsconnected && navigator.onLine !== false
    const wasLive = presence.live
    renderPresence(presence.update(readPeers(room.awareness), live))
    if (live && !wasLive) {
      if (rejoinTimer !== null) clearTimeout(rejoinTimer)
      rejoinTimer = setTimeout(() => { rejoinTimer = null; refreshPresence() }, REJOIN_GRACE_MS + 100)
    }
  }
  room.awareness.on('change', refreshPresence)
  refreshPresence()

  const renderStatus = createStatusView($(document, '[data-testid=connection-status]'))
  room.status.subscribe((status) => {
    renderStatus(status)
    refreshPresence()
  })

  /** @type {ReturnType<typeof setTimeout> | null} */
  let typingTimer = null
  const setTyping = (/** @type {boolean} */ typing) => {
    if (typingTimer !== null) clearTimeout(typingTimer)
    typingTimer = typing ? setTimeout(() => setTyping(false), TYPING_IDLE_MS) : null
    if (Boolean(room.awareness.getLocalState()?.typing) !== typing) room.awareness.setLocalStateField('typing', typing)
  }
  input.addEventListener('input', () => setTyping(input.value.trim().length > 0))
  input.addEventListener('blur', () => setTyping(false))

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = input.value.trim()
    if (text.length === 0) return
    addMessage(room.doc, { user: me, text })
    input.value = ''
    setTyping(false)
    input.focus()
  })

  const rename = () => {
    const name = nameInput.value.trim().slice(0, 64)
    if (name.length === 0 || name === me) {
      nameInput.value = me
      return
    }
    me = name
    rememberUser(window.history, window.location, me)
    room.awareness.setLocalStateField('user', { name: me, color: colorFor(me) })
    renderMessages()
  }
  nameInput.addEventListener('change', rename)
  $(document, '#identity-form').addEventListener('submit', (event) => {
    event.preventDefault()
    rename()
    const next = roomInput.value.trim()
    if (next.length > 0 && next !== identity.room) {
      const url = new URL(window.location.href)
      url.searchParams.set('room', next)
      window.location.assign(url)
    }
  })

  const toggle = /** @type {HTMLButtonElement} */ ($(document, '[data-testid=history-toggle]'))
  const history = createHistoryView({
    http: { baseUrl: window.location.origin, token: identity.token },
    room: identity.room,
    me: () => me,
    panel: $(document, '#history-panel'),
    list: $(document, '#history-messages'),
    onToggle: (open) => {
      chat.classList.toggle('time-travel', open)
      toggle.setAttribute('aria-pressed', String(open))
      toggle.textContent = open ? 'Back to live' : 'History'
      input.disabled = open
      if (!open) renderMessages()
    },
    // The restored content arrives through sync like any edit: show the live chat to watch it land.
    onRestored: () => history.close()
  })
  toggle.addEventListener('click', () => { history.isOpen() ? history.close() : void history.open() })
  $(document, '#history-live').addEventListener('click', () => history.close())

  registerServiceWorker()
  input.focus()
}

/** The app shell must be cached while online so a reload without network still starts. */
function registerServiceWorker () {
  if (!('serviceWorker' in navigator)) return
  navigator.serviceWorker.register('/sw.js').catch((error) => {
    console.warn('service worker registration failed; offline reload will not work', error)
  })
}

/**
 * Handy in the console and for browser tests that inspect state without scraping the DOM.
 * @param {import('../src/connect.js').Room} room
 */
function exposeForDebugging (room) {
  /** @type {any} */ (window).performer = room
}

main()

/**
 * "Room history": a slider over the room log; each position shows the chat exactly as it was
 * after that log entry, rebuilt from `/state?at=SEQ` in a throwaway Y.Doc (never the live one).
 * @module history-view
 */

import { fetchHistory, fetchDocAt } from '../src/history.js'
import { readMessages } from './model.js'
import { createMessagesView } from './messages-view.js'
import { formatTime } from './identity.js'

/**
 * @typedef {object} HistoryViewOptions
 * @property {import('../src/history.js').HttpOptions} http
 * @property {string} room
 * @property {() => string} me
 * @property {HTMLElement} panel the slider bar
 * @property {HTMLOListElement} list where past messages are shown
 * @property {(open: boolean) => void} onToggle
 */

/**
 * @param {HistoryViewOptions} options
 * @returns {{ open: () => Promise<void>, close: () => void, isOpen: () => boolean }}
 */
export function createHistoryView ({ http, room, me, panel, list, onToggle }) {
  const slider = /** @type {HTMLInputElement} */ (panel.querySelector('input[type=range]'))
  const label = /** @type {HTMLElement} */ (panel.querySelector('.history-label'))
  const view = createMessagesView(list, { me, testId: 'history-message' })
  /** @type {import('../src/history.js').HistoryEntry[]} */
  let entries = []
  let opened = false
  let request = 0
  /** @type {ReturnType<typeof setTimeout> | null} */
  let debounce = null

  async function show () {
    const index = Number(slider.value)
    const entry = entries[index]
    if (!entry) return
    const ticket = ++request
    label.textContent = `#${entry.seq} of ${entries[entries.length - 1].seq} · ${formatTime(entry.ts)}${entry.user ? ' · ' + entry.user : ''} · loading…`
    try {
      const doc = await fetchDocAt(http, room, entry.seq)
      if (ticket !== request) return
      const messages = readMessages(doc)
      doc.destroy()
      view.render(messages)
      view.scrollToEnd()
      label.textContent = `#${entry.seq} of ${entries[entries.length - 1].seq} · ${formatTime(entry.ts)}${entry.user ? ' · ' + entry.user : ''} · ${messages.length} messages`
    } catch (error) {
      if (ticket === request) label.textContent = `Could not load #${entry.seq}: ${String(error)}`
    }
  }

  slider.addEventListener('input', () => {
    if (debounce !== null) clearTimeout(debounce)
    debounce = setTimeout(() => { debounce = null; void show() }, 120)
  })

  async function open () {
    opened = true
    onToggle(true)
    label.textContent = 'Loading history…'
    slider.disabled = true
    try {
      const page = await fetchHistory(http, room)
      if (!opened) return
      entries = page.entries
      if (entries.length === 0) {
        label.textContent = 'Nothing recorded yet (history needs the server).'
        view.render([])
        return
      }
      slider.min = '0'
      slider.max = String(entries.length - 1)
      slider.value = String(entries.length - 1)
      slider.disabled = false
      await show()
    } catch (error) {
      label.textContent = `History unavailable: ${String(error)}`
    }
  }

  function close () {
    opened = false
    request++
    onToggle(false)
  }

  return { open, close, isOpen: () => opened }
}

/**
 * "Room history": a slider over the room log; each position shows the chat exactly as it was
 * after that log entry, rebuilt from `/state?at=SEQ` in a throwaway Y.Doc (never the live one).
 * Named versions are marks on the slider (and buttons that jump there); "Restore this version"
 * asks the server to make the room equal to the chosen position again, and the result reaches
 * every open tab, this one included, through normal sync.
 * @module history-view
 */

import { fetchHistory, fetchDocAt, fetchVersions, restoreVersion } from '../src/history.js'
import { readMessages } from './model.js'
import { createMessagesView } from './messages-view.js'
import { formatTime } from './identity.js'
import { h } from './dom.js'

/**
 * @typedef {object} HistoryViewOptions
 * @property {import('../src/history.js').HttpOptions} http
 * @property {string} room
 * @property {() => string} me
 * @property {HTMLElement} panel the slider bar
 * @property {HTMLOListElement} list where past messages are shown
 * @property {(open: boolean) => void} onToggle
 * @property {(restored: { from: number, seq: number }) => void} [onRestored] after a restore was stored
 */

/**
 * Index of the last entry at or before `seq` (a version's seq may fall between entries).
 * @param {import('../src/history.js').HistoryEntry[]} entries in log order
 * @param {number} seq
 * @returns {number} -1 when every entry is later
 */
export function indexAtOrBefore (entries, seq) {
  let found = -1
  for (let i = 0; i < entries.length && entries[i].seq <= seq; i++) found = i
  return found
}

/**
 * @param {HistoryViewOptions} options
 * @returns {{ open: () => Promise<void>, close: () => void, isOpen: () => boolean }}
 */
export function createHistoryView ({ http, room, me, panel, list, onToggle, onRestored }) {
  const slider = /** @type {HTMLInputElement} */ (panel.querySelector('input[type=range]'))
  const label = /** @type {HTMLElement} */ (panel.querySelector('.history-label'))
  const restore = /** @type {HTMLButtonElement} */ (panel.querySelector('[data-testid=restore-button]'))
  const marks = /** @type {HTMLDataListElement} */ (panel.querySelector('datalist'))
  const chips = /** @type {HTMLElement} */ (panel.querySelector('.history-versions'))
  const view = createMessagesView(list, { me, testId: 'history-message' })
  /** @type {import('../src/history.js').HistoryEntry[]} */
  let entries = []
  /** @type {{ name: string, seq: number, index: number }[]} */
  let versions = []
  let opened = false
  let restoring = false
  let request = 0
  /** @type {ReturnType<typeof setTimeout> | null} */
  let debounce = null

  const current = () => entries[Number(slider.value)]
  const isLatest = () => Number(slider.value) >= entries.length - 1

  function updateControls () {
    restore.disabled = restoring || entries.length === 0 || isLatest()
    restore.title = isLatest() ? 'This is the current version' : ''
    const index = Number(slider.value)
    for (const chip of chips.querySelectorAll('button')) {
      chip.setAttribute('aria-current', String(Number(chip.getAttribute('data-index')) === index))
    }
  }

  /** @param {import('../src/history.js').HistoryEntry} entry */
  function describe (entry) {
    const named = versions.filter((version) => version.index === Number(slider.value)).map((version) => `“${version.name}”`)
    return `#${entry.seq} of ${entries[entries.length - 1].seq} · ${formatTime(entry.ts)}${entry.user ? ' · ' + entry.user : ''}${named.length > 0 ? ' · ' + named.join(', ') : ''}`
  }

  async function show () {
    const entry = current()
    updateControls()
    if (!entry) return
    const ticket = ++request
    label.textContent = `${describe(entry)} · loading…`
    try {
      const doc = await fetchDocAt(http, room, entry.seq)
      if (ticket !== request) return
      const messages = readMessages(doc)
      doc.destroy()
      view.render(messages)
      view.scrollToEnd()
      label.textContent = `${describe(entry)} · ${messages.length} messages`
    } catch (error) {
      if (ticket === request) label.textContent = `Could not load #${entry.seq}: ${String(error)}`
    }
  }

  slider.addEventListener('input', () => {
    updateControls()
    if (debounce !== null) clearTimeout(debounce)
    debounce = setTimeout(() => { debounce = null; void show() }, 120)
  })

  restore.addEventListener('click', async () => {
    const entry = current()
    if (!entry || restoring || isLatest()) return
    restoring = true
    updateControls()
    request++ // a position still loading must not overwrite what follows
    label.textContent = `Restoring #${entry.seq}…`
    try {
      const { seq } = await restoreVersion(http, room, entry.seq)
      label.textContent = `Restored #${entry.seq} as #${seq}`
      onRestored?.({ from: entry.seq, seq })
    } catch (error) {
      label.textContent = `Could not restore #${entry.seq}: ${String(error)}`
    } finally {
      restoring = false
      updateControls()
    }
  })

  function renderVersions () {
    marks.replaceChildren(...versions.map((version) => h('option', { value: String(version.index), label: version.name })))
    chips.replaceChildren(...versions.map((version) => {
      const chip = h('button', {
        type: 'button',
        class: 'version-mark',
        'data-testid': 'version-mark',
        'data-seq': String(version.seq),
        'data-index': String(version.index),
        title: `Version “${version.name}” (#${version.seq})`,
        text: version.name
      })
      chip.addEventListener('click', () => {
        slider.value = String(version.index)
        void show()
      })
      return chip
    }))
  }

  async function open () {
    opened = true
    onToggle(true)
    label.textContent = 'Loading history…'
    slider.disabled = true
    entries = []
    versions = []
    renderVersions()
    updateControls()
    try {
      const [page, named] = await Promise.all([
        fetchHistory(http, room),
        fetchVersions(http, room).catch(() => /** @type {import('../src/history.js').NamedVersion[]} */ ([]))
      ])
      if (!opened) return
      entries = page.entries
      if (entries.length === 0) {
        label.textContent = 'Nothing recorded yet (history needs the server).'
        view.render([])
        updateControls()
        return
      }
      versions = named
        .map((version) => ({ ...version, index: indexAtOrBefore(entries, version.seq) }))
        .filter((version) => version.index >= 0)
      renderVersions()
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

/**
 * View the room at any position (a slider over seqs, `GET /json?at=K`), compare two positions, and restore a
 * position after previewing what the restore would change (`POST /restore`, confirmed by a second click).
 * @module time-travel
 */
import { h } from '../demo/dom.js'
import { getJson, postJson, roomPath } from './api.js'
import { diffJson } from './diff.js'
import { JsonTree } from './tree.js'

/** @typedef {import('./diff.js').Change} Change */

export class TimeTravel {
  /** @param {string} room @param {() => unknown} current the room's content now */
  constructor (room, current) {
    this.room = room
    this.current = current
    this.tree = new JsonTree({ 'data-testid': 'at-tree' })
    this.slider = h('input', { type: 'range', min: '0', max: '0', value: '0', 'aria-label': 'position (seq)', 'data-testid': 'at-slider' })
    this.seqInput = h('input', { type: 'number', min: '0', value: '0', 'aria-label': 'seq', 'data-testid': 'at-seq' })
    this.shown = h('p', { class: 'status', role: 'status', 'data-testid': 'at-shown' })
    this.preview = h('div', { class: 'preview', 'data-testid': 'restore-preview' })
    this.restoreButton = h('button', { type: 'button', 'data-testid': 'restore-button', text: 'Restore to this position…' })
    this.restoreButton.addEventListener('click', () => this.previewRestore())
    /** @type {unknown} */
    this.atContent = null
    this.atSeq = 0
    this.slider.addEventListener('input', () => { this.seqInput.value = this.slider.value })
    this.slider.addEventListener('change', () => this.show(Number(this.slider.value)))
    this.seqInput.addEventListener('change', () => this.show(Number(this.seqInput.value)))
    this.element = h('section', { class: 'card' }, [
      h('h3', { text: 'Time travel' }),
      h('div', { class: 'toolbar' }, [this.slider, this.seqInput]),
      this.shown, this.tree.element, this.restoreButton, this.preview
    ])
  }

  /** @param {number} lastSeq keeps the slider's range up to date */
  extend (lastSeq) {
    const atEnd = this.slider.value === this.slider.max
    this.slider.max = String(lastSeq)
    this.seqInput.max = String(lastSeq)
    if (atEnd && this.atSeq === 0) this.slider.value = String(lastSeq)
  }

  /** @param {number} seq */
  async show (seq) {
    const target = Math.max(0, Math.min(Math.floor(seq), Number(this.slider.max)))
    this.slider.value = String(target)
    this.seqInput.value = String(target)
    const answer = await getJson(`${roomPath(this.room, '/json')}?at=${target}`)
    if (Number(this.slider.value) !== target) return // moved on meanwhile
    this.atSeq = answer.seq
    this.atContent = answer.doc
    this.tree.render(answer.doc)
    this.shown.textContent = `content at seq ${answer.seq}`
    this.shown.dataset.seq = String(answer.seq)
    this.preview.replaceChildren()
  }

  previewRestore () {
    const seq = this.atSeq
    const changes = diffJson(this.current(), this.atContent)
    const confirm = h('button', { type: 'button', class: 'danger', 'data-testid': 'restore-confirm', text: `Restore to seq ${seq}` })
    const cancel = h('button', { type: 'button', text: 'Cancel' })
    cancel.addEventListener('click', () => this.preview.replaceChildren())
    confirm.addEventListener('click', async () => {
      confirm.disabled = true
      try {
        const result = await postJson(roomPath(this.room, '/restore'), { seq })
        this.preview.replaceChildren(h('p', { 'data-testid': 'restore-result', text: result.changed ? `restored: the room is at seq ${result.seq}, equal to seq ${seq}` : `nothing to restore: the room already equals seq ${seq}` }))
      } catch (error) {
        this.preview.replaceChildren(h('p', { class: 'error', text: `restore failed: ${/** @type {Error} */ (error).message}` }))
      }
    })
    this.preview.replaceChildren(
      h('p', { text: `Restoring makes one new edit after which the room equals seq ${seq}. It would change:` }),
      changeList(changes),
      h('div', { class: 'toolbar' }, [confirm, cancel])
    )
    confirm.focus()
  }
}

/** Compare any two positions. */
export class DiffView {
  /** @param {string} room */
  constructor (room) {
    this.room = room
    this.from = h('input', { type: 'number', min: '0', value: '0', 'aria-label': 'from seq', 'data-testid': 'diff-from' })
    this.to = h('input', { type: 'number', min: '0', value: '0', 'aria-label': 'to seq', 'data-testid': 'diff-to' })
    const go = h('button', { type: 'button', 'data-testid': 'diff-button', text: 'Compare' })
    this.out = h('div')
    go.addEventListener('click', () => this.compare())
    this.element = h('section', { class: 'card' }, [
      h('h3', { text: 'Diff' }), h('div', { class: 'toolbar' }, [h('label', {}, ['from ', this.from]), h('label', {}, ['to ', this.to]), go]), this.out
    ])
  }

  async compare () {
    try {
      const [a, b] = await Promise.all([this.from.value, this.to.value].map((seq) => getJson(`${roomPath(this.room, '/json')}?at=${Number(seq)}`)))
      this.out.replaceChildren(h('p', { text: `seq ${a.seq} → seq ${b.seq}` }), changeList(diffJson(a.doc, b.doc)))
    } catch (error) {
      this.out.replaceChildren(h('p', { class: 'error', text: /** @type {Error} */ (error).message }))
    }
  }
}

/** @param {Change[]} changes */
export function changeList (changes) {
  if (changes.length === 0) return h('p', { 'data-testid': 'diff-list', text: 'no differences' })
  return h('ul', { class: 'changes', 'data-testid': 'diff-list' }, changes.slice(0, 500).map((change) => h('li', { class: change.kind, 'data-testid': 'diff-entry' }, [
    h('span', { class: 'kind', text: change.kind }), ' ', h('code', { text: change.path }), ' ',
    change.kind === 'added' ? short(change.after) : change.kind === 'removed' ? short(change.before) : `${short(change.before)} → ${short(change.after)}`
  ])))
}

/** @param {unknown} value */
function short (value) {
  const text = JSON.stringify(value) ?? 'undefined'
  return text.length > 80 ? text.slice(0, 77) + '…' : text
}

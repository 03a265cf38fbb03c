/**
 * A room's history as edits over time by user: a stacked bar chart (time buckets) with per-user totals and the
 * latest entries, from `GET /history`, extended live from the change feed. "Zoom" picks how many of the latest
 * entries it spans.
 * @module timeline
 */
import { h } from '../demo/dom.js'
import { getJson, roomPath } from './api.js'
import { colorOf, time, who } from './format.js'

const BUCKETS = 40
const ZOOMS = [50, 200, 1000]
const LISTED = 30

/** @typedef {{ seq: number, ts: number, user: string | null, restore_of?: number }} Entry */

export class Timeline {
  /** @param {string} room @param {(seq: number) => void} pick called when an entry is chosen */
  constructor (room, pick) {
    this.room = room
    this.pick = pick
    /** @type {Entry[]} */
    this.entries = []
    this.span = ZOOMS[1]
    this.chart = h('div', { class: 'bars', role: 'img', 'aria-label': 'edits over time by user' })
    this.legend = h('ul', { class: 'legend' })
    this.list = h('ol', { class: 'entries' })
    const zoom = h('select', { 'aria-label': 'how many of the latest edits', 'data-testid': 'timeline-zoom' },
      ZOOMS.map((n) => h('option', { value: String(n), text: `last ${n} edits`, selected: n === this.span })))
    zoom.addEventListener('change', () => { this.span = Number(zoom.value); this.load(this.lastSeq) })
    this.lastSeq = 0
    this.element = h('section', { class: 'card', 'data-testid': 'timeline' }, [
      h('div', { class: 'toolbar' }, [h('h3', { text: 'Timeline' }), zoom]), this.chart, this.legend, this.list
    ])
  }

  /** @param {number} lastSeq */
  async load (lastSeq) {
    this.lastSeq = lastSeq
    const after = Math.max(0, lastSeq - this.span)
    const answer = await getJson(`${roomPath(this.room, '/history')}?after=${after}&limit=${this.span}`)
    /** @type {Entry[]} */
    const loaded = answer.entries
    // Edits the change feed delivered while the history was on its way stay (they may be newer than it).
    const lastLoaded = loaded.length > 0 ? loaded[loaded.length - 1].seq : after
    this.entries = [...loaded, ...this.entries.filter((entry) => entry.seq > lastLoaded)].slice(-this.span)
    this.draw()
  }

  /** @param {Entry} entry one committed edit from the change feed */
  add (entry) {
    if (this.entries.length > 0 && entry.seq <= this.entries[this.entries.length - 1].seq) return
    this.entries.push(entry)
    this.lastSeq = entry.seq
    if (this.entries.length > this.span) this.entries.splice(0, this.entries.length - this.span)
    this.draw()
  }

  draw () {
    const entries = this.entries
    /** @type {Map<string, number>} */
    const totals = new Map()
    for (const entry of entries) totals.set(who(entry.user), (totals.get(who(entry.user)) ?? 0) + 1)
    this.legend.replaceChildren(...[...totals].sort((a, b) => b[1] - a[1]).map(([user, count]) =>
      h('li', { 'data-testid': 'timeline-user' }, [h('span', { class: 'swatch', style: `background:${colorOf(user)}` }), `${user}: ${count} edits`])))
    this.chart.replaceChildren(...buckets(entries).map((bucket) => {
      const column = h('div', { class: 'bar', title: `${time(bucket.from)}: ${bucket.total} edits` })
      for (const [user, count] of bucket.users) {
        column.append(h('div', { style: `height:${count / bucket.max * 100}%;background:${colorOf(user)}` }))
      }
      return column
    }))
    this.list.replaceChildren(...entries.slice(-LISTED).reverse().map((entry) => {
      const button = h('button', { type: 'button', class: 'link', text: `#${entry.seq}` })
      button.addEventListener('click', () => this.pick(entry.seq))
      const note = entry.restore_of !== undefined ? ` (restore of #${entry.restore_of})` : ''
      return h('li', { 'data-testid': 'timeline-entry' }, [button, ` ${who(entry.user)} · ${time(entry.ts)}${note}`])
    }))
  }
}

/**
 * @param {Entry[]} entries
 * @returns {{ from: number, total: number, max: number, users: [string, number][] }[]}
 */
function buckets (entries) {
  if (entries.length === 0) return []
  const start = entries[0].ts
  const width = Math.max(1e-3, (entries[entries.length - 1].ts - start) / BUCKETS)
  /** @type {Map<string, number>[]} */
  const counts = Array.from({ length: BUCKETS }, () => new Map())
  for (const entry of entries) {
    const index = Math.min(BUCKETS - 1, Math.floor((entry.ts - start) / width))
    counts[index].set(who(entry.user), (counts[index].get(who(entry.user)) ?? 0) + 1)
  }
  const totals = counts.map((c) => [...c.values()].reduce((a, b) => a + b, 0))
  const max = Math.max(1, ...totals)
  return counts.map((users, i) => ({ from: start + i * width, total: totals[i], max, users: [...users] }))
}

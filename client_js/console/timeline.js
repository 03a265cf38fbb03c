/**
 * A room's history as edits over time by user: a stacked bar chart (time buckets) with per-user totals, the latest
 * entries and the refusals (edits a rule or `Hooks.check` partly undid: who, by what, why), from `GET /history`,
 * extended live from the change feed. The chart zooms (drag a span, the wheel, the buttons or the keys: + − ← → 0);
 * the selector says how many of the latest edits are loaded to zoom in.
 * @module timeline
 */
import { h } from '../demo/dom.js'
import { getJson, roomPath } from './api.js'
import { colorOf, time, who } from './format.js'
import { ChartZoom, fullSpan } from './zoom.js'

const BUCKETS = 40
const LOADS = [50, 200, 1000]
const LISTED = 30
/** The change feed does not say whether an edit was refused: its history entry does, read this long after it. */
const RECHECK_MS = 1000
let timelines = 0

/** @typedef {{ user: string | null, by: string, reason: string }} Refusal */
/** @typedef {{ seq: number, ts: number, user: string | null, restore_of?: number, rejected?: Refusal }} Entry */
/** @typedef {import('./zoom.js').Span} Span */

export class Timeline {
  /** @param {string} room @param {(seq: number) => void} pick called when an entry is chosen */
  constructor (room, pick) {
    this.room = room
    this.pick = pick
    /** @type {Entry[]} */
    this.entries = []
    this.span = LOADS[1]
    /** @type {Span | null} what the chart shows (null: everything loaded) */
    this.view = null
    /** @type {(Entry | undefined)[]} the latest edit of each bucket of the last drawing, for clicks */
    this.drawn = []
    this.lastSeq = 0
    /** @type {number[]} feed entries whose refusal record was not read yet */
    this.unchecked = []
    this.recheckTimer = 0
    this.stopped = false
    /** @type {HTMLSelectElement | null} */
    this.select = null
    const rangeId = `timeline-range-${++timelines}`
    this.bars = h('div', {
      class: 'bars',
      tabindex: '0',
      role: 'group',
      'aria-roledescription': 'zoomable chart',
      'aria-label': 'Edits over time by user. Drag across it to zoom in; keys: + zoom in, − zoom out, ← → move, 0 show all',
      'aria-describedby': rangeId,
      'data-testid': 'timeline-chart'
    })
    this.selection = h('div', { class: 'selection', hidden: true })
    this.range = h('p', { class: 'status', id: rangeId, 'data-testid': 'timeline-range' })
    this.legend = h('ul', { class: 'legend' })
    this.refusals = h('ul', { class: 'refusals', 'data-testid': 'timeline-refusals' })
    this.list = h('ol', { class: 'entries' })
    this.zoom = new ChartZoom(this.bars, this.selection, {
      span: () => this.view,
      full: () => fullSpan(this.entries),
      onZoom: (span) => this.show(span),
      onClick: (at) => this.clicked(at)
    })
    this.element = h('section', { class: 'card', 'data-testid': 'timeline' }, [
      h('div', { class: 'toolbar' }, [h('h3', { text: 'Timeline' }), this.loadSelect()]),
      h('div', { class: 'toolbar zoom' }, this.zoomButtons()),
      h('div', { class: 'chart-area' }, [this.bars, this.selection]),
      this.range, this.legend, this.refusals, this.list
    ])
  }

  loadSelect () {
    const select = h('select', { 'aria-label': 'how many of the latest edits to load', 'data-testid': 'timeline-load' },
      LOADS.map((n) => h('option', { value: String(n), text: `last ${n} edits`, selected: n === this.span })))
    select.addEventListener('change', () => {
      this.span = Number(select.value)
      this.view = null
      this.load(this.lastSeq)
    })
    this.select = select
    return select
  }

  zoomButtons () {
    /** @type {[string, string, string, () => void][]} */
    const buttons = [
      ['−', 'Zoom out', 'timeline-zoom-out', () => this.zoomOut()],
      ['+', 'Zoom in', 'timeline-zoom-in', () => this.zoom.zoomIn()],
      ['◀', 'Earlier', 'timeline-earlier', () => this.zoom.earlier()],
      ['▶', 'Later', 'timeline-later', () => this.zoom.later()],
      ['All', 'Show everything loaded', 'timeline-reset', () => this.zoom.reset()]
    ]
    return buttons.map(([text, label, testid, action]) => {
      const button = h('button', { type: 'button', text, title: label, 'aria-label': label, 'data-testid': testid })
      button.addEventListener('click', action)
      return button
    })
  }

  /** Zooming out of everything loaded loads more history, when there is more to load. */
  zoomOut () {
    const older = this.entries.length > 0 && this.entries[0].seq > 1
    const more = LOADS.find((n) => n > this.span)
    if (this.view === null && older && more !== undefined) {
      this.span = more
      if (this.select) this.select.value = String(more)
      this.load(this.lastSeq)
    } else {
      this.zoom.zoomOut()
    }
  }

  /** @param {Span | null} span */
  show (span) {
    this.view = span
    this.draw()
  }

  /** A click on the chart picks the latest edit of the bucket under it. @param {number} at 0..1 */
  clicked (at) {
    const entry = this.drawn[Math.min(BUCKETS - 1, Math.floor(at * BUCKETS))]
    if (entry) this.pick(entry.seq)
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
    this.unchecked.push(entry.seq)
    if (!this.recheckTimer) this.recheckTimer = window.setTimeout(() => this.recheck(), RECHECK_MS)
    this.draw()
  }

  /** Reads the history entries of the edits the feed brought, for their refusal records. */
  async recheck () {
    this.recheckTimer = 0
    const seqs = this.unchecked.splice(0)
    if (seqs.length === 0 || this.stopped) return
    const after = Math.max(Math.min(...seqs) - 1, this.lastSeq - LOADS[LOADS.length - 1])
    try {
      const answer = await getJson(`${roomPath(this.room, '/history')}?after=${after}&limit=${LOADS[LOADS.length - 1]}`)
      /** @type {Map<number, Refusal>} */
      const refused = new Map(answer.entries.filter((/** @type {Entry} */ e) => e.rejected).map((/** @type {Entry} */ e) => [e.seq, e.rejected]))
      for (const entry of this.entries) {
        const record = refused.get(entry.seq)
        if (record) entry.rejected = record
      }
      if (refused.size > 0) this.draw()
    } catch {
      // the next edit checks again; the refusal counts in the rooms table stay right meanwhile
    }
  }

  stop () {
    this.stopped = true
    window.clearTimeout(this.recheckTimer)
  }

  draw () {
    const full = fullSpan(this.entries)
    const span = this.view ?? full
    const shown = span === null ? [] : this.entries.filter((entry) => entry.ts >= span.from && entry.ts <= span.to)
    this.range.textContent = span === null
      ? 'no edits yet'
      : `${time(span.from)} – ${time(span.to)} · ${shown.length} edits${this.view ? ' (zoomed)' : ''}`
    this.range.dataset.count = String(shown.length)
    this.range.dataset.zoomed = String(this.view !== null)
    this.drawLegend(shown)
    this.drawBars(shown, span)
    this.drawRefusals(shown)
    this.list.replaceChildren(...shown.slice(-LISTED).reverse().map((entry) => this.entryItem(entry)))
  }

  /** @param {Entry[]} shown */
  drawLegend (shown) {
    /** @type {Map<string, number>} */
    const totals = new Map()
    for (const entry of shown) totals.set(who(entry.user), (totals.get(who(entry.user)) ?? 0) + 1)
    this.legend.replaceChildren(...[...totals].sort((a, b) => b[1] - a[1]).map(([user, count]) =>
      h('li', { 'data-testid': 'timeline-user' }, [h('span', { class: 'swatch', style: `background:${colorOf(user)}` }), `${user}: ${count} edits`])))
  }

  /** @param {Entry[]} shown @param {Span | null} span */
  drawBars (shown, span) {
    const columns = span === null ? [] : buckets(shown, span)
    this.drawn = columns.map((bucket) => bucket.last)
    this.bars.replaceChildren(...columns.map((bucket) => {
      const refused = bucket.refused ? `, ${bucket.refused} refused` : ''
      const column = h('div', { class: bucket.refused ? 'bar refused' : 'bar', title: `${time(bucket.from)}: ${bucket.total} edits${refused}` })
      for (const [user, count] of bucket.users) {
        column.append(h('div', { style: `height:${count / bucket.max * 100}%;background:${colorOf(user)}` }))
      }
      return column
    }))
  }

  /** @param {Entry[]} shown */
  drawRefusals (shown) {
    const refused = shown.filter((entry) => entry.rejected)
    this.refusals.replaceChildren(...refused.slice(-LISTED).reverse().map((entry) => {
      const button = h('button', { type: 'button', class: 'link', text: `#${entry.seq}` })
      button.addEventListener('click', () => this.pick(entry.seq))
      return h('li', { 'data-testid': 'timeline-refusal', class: 'error' }, [button, ` ${refusalText(/** @type {Refusal} */ (entry.rejected))} · ${time(entry.ts)}`])
    }))
  }

  /** @param {Entry} entry */
  entryItem (entry) {
    const button = h('button', { type: 'button', class: 'link', text: `#${entry.seq}` })
    button.addEventListener('click', () => this.pick(entry.seq))
    const note = entry.restore_of !== undefined ? ` (restore of #${entry.restore_of})` : ''
    const refused = entry.rejected ? ` · ${refusalText(entry.rejected)}` : ''
    return h('li', { 'data-testid': 'timeline-entry', class: entry.rejected ? 'refused' : '' }, [button, ` ${who(entry.user)} · ${time(entry.ts)}${note}${refused}`])
  }
}

/** @type {Record<string, string>} */
const REFUSED_BY = { rule: 'a rule', check: 'the check hook', check_failed: 'the check hook (it failed)' }

/** e.g. "bo refused by a rule: only the author can delete messages[0]" @param {Refusal} refusal */
export function refusalText (refusal) {
  const reason = refusal.reason.replace(/^rule: /, '')
  return `${who(refusal.user)} refused by ${REFUSED_BY[refusal.by] ?? refusal.by}: ${reason}`
}

/**
 * @param {Entry[]} entries inside `span`, oldest first
 * @param {Span} span
 * @returns {{ from: number, total: number, max: number, refused: number, users: [string, number][], last: Entry | undefined }[]}
 */
function buckets (entries, span) {
  const width = (span.to - span.from) / BUCKETS
  const counts = Array.from({ length: BUCKETS }, () => ({ users: /** @type {Map<string, number>} */ (new Map()), refused: 0, last: /** @type {Entry | undefined} */ (undefined) }))
  for (const entry of entries) {
    const bucket = counts[Math.min(BUCKETS - 1, Math.max(0, Math.floor((entry.ts - span.from) / width)))]
    bucket.users.set(who(entry.user), (bucket.users.get(who(entry.user)) ?? 0) + 1)
    if (entry.rejected) bucket.refused++
    bucket.last = entry
  }
  const totals = counts.map((c) => [...c.users.values()].reduce((a, b) => a + b, 0))
  const max = Math.max(1, ...totals)
  return counts.map((c, i) => ({ from: span.from + i * width, total: totals[i], max, refused: c.refused, users: [...c.users], last: c.last }))
}

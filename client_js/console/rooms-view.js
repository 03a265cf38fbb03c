/**
 * The rooms table: every room with its connections, size, last seq, last edit, an edit rate, parked deliveries and policy
 * refusals (edits a rule or `Hooks.check` partly undid), sortable by any
 * column, filterable by name or user, refreshed every second from `GET /v1/rooms?detail=1` while it is shown.
 * @module rooms-view
 */
import { h } from '../demo/dom.js'
import { getJson, roomLink } from './api.js'
import { ago, size, who } from './format.js'

const REFRESH_MS = 1000
const RATE_WINDOW_S = 60

/**
 * @typedef {object} RoomRow
 * @property {string} name
 * @property {boolean} loaded
 * @property {number} connections
 * @property {string[]} users
 * @property {number} log_bytes
 * @property {number} last_seq
 * @property {number | null} last_ts
 * @property {string | null} last_user
 * @property {string[]} parked consumers (webhook, hooks) whose deliveries for the room are parked
 * @property {number} refusals how many of its edits a rule or `Hooks.check` partly undid
 * @property {number | null} [rate] edits per minute seen by this page (null until it has watched long enough)
 */

/** @type {{ key: keyof RoomRow, label: string, numeric: boolean }[]} */
const COLUMNS = [
  { key: 'name', label: 'Room', numeric: false },
  { key: 'connections', label: 'Connections', numeric: true },
  { key: 'users', label: 'Connected users', numeric: false },
  { key: 'log_bytes', label: 'Size', numeric: true },
  { key: 'last_seq', label: 'Last seq', numeric: true },
  { key: 'last_ts', label: 'Last edit', numeric: true },
  { key: 'last_user', label: 'By', numeric: false },
  { key: 'rate', label: 'Edits/min', numeric: true },
  { key: 'parked', label: 'Parked', numeric: false },
  { key: 'refusals', label: 'Refusals', numeric: true },
  { key: 'loaded', label: 'Loaded', numeric: false }
]

export class RoomsView {
  constructor () {
    /** @type {RoomRow[]} */
    this.rooms = []
    /** @type {keyof RoomRow} */
    this.sortKey = 'last_ts'
    this.descending = true
    this.filter = ''
    /** @type {Map<string, [number, number][]>} room -> (time, last_seq) samples */
    this.samples = new Map()
    this.timer = 0
    this.body = h('tbody')
    this.head = h('tr')
    this.headCells = this.buildHead()
    this.status = h('p', { class: 'status', role: 'status' })
    const search = h('input', { type: 'search', placeholder: 'Filter by room or user', 'aria-label': 'Filter rooms', 'data-testid': 'rooms-filter' })
    search.addEventListener('input', () => { this.filter = search.value.trim().toLowerCase(); this.draw() })
    this.element = h('section', { class: 'rooms' }, [
      h('div', { class: 'toolbar' }, [h('h2', { text: 'Rooms' }), search]),
      h('div', { class: 'scroll' }, [h('table', { 'data-testid': 'rooms-table' }, [h('thead', {}, [this.head]), this.body])]),
      this.status
    ])
  }

  start () {
    const tick = async () => {
      try {
        const answer = await getJson('v1/rooms?detail=1')
        this.update(answer.rooms)
        this.status.textContent = `${this.rooms.length} rooms · updated ${new Date().toLocaleTimeString()}`
      } catch (error) {
        this.status.textContent = `cannot list rooms: ${/** @type {Error} */ (error).message}`
      }
      if (this.timer !== -1) this.timer = window.setTimeout(tick, REFRESH_MS)
    }
    this.timer = 0
    tick()
  }

  stop () {
    window.clearTimeout(this.timer)
    this.timer = -1
  }

  /** @param {RoomRow[]} rooms */
  update (rooms) {
    const now = Date.now() / 1000
    for (const room of rooms) {
      const samples = this.samples.get(room.name) ?? []
      samples.push([now, room.last_seq])
      while (samples.length > 2 && now - samples[0][0] > RATE_WINDOW_S) samples.shift()
      this.samples.set(room.name, samples)
      const [t0, s0] = samples[0]
      room.rate = now - t0 >= 5 ? Math.round((room.last_seq - s0) / (now - t0) * 60) : null
    }
    this.rooms = rooms
    this.draw()
  }

  /** The header is built once: redrawing it every refresh would take the keyboard focus from its buttons. */
  buildHead () {
    /** @type {Map<keyof RoomRow, [HTMLElement, HTMLElement, string]>} */
    const cells = new Map()
    this.head.replaceChildren(...COLUMNS.map(({ key, label }) => {
      const button = h('button', { type: 'button', text: label })
      button.addEventListener('click', () => {
        this.descending = this.sortKey === key ? !this.descending : key !== 'name'
        this.sortKey = key
        this.draw()
      })
      const cell = h('th', { scope: 'col' }, [button])
      cells.set(key, [cell, button, label])
      return cell
    }))
    return cells
  }

  drawHead () {
    for (const [key, [cell, button, label]] of this.headCells) {
      const sorted = this.sortKey === key
      button.textContent = label + (sorted ? (this.descending ? ' ▼' : ' ▲') : '')
      if (sorted) cell.setAttribute('aria-sort', this.descending ? 'descending' : 'ascending')
      else cell.removeAttribute('aria-sort')
    }
  }

  draw () {
    this.drawHead()
    const shown = this.rooms.filter((room) => !this.filter ||
      room.name.toLowerCase().includes(this.filter) ||
      room.users.some((user) => user.toLowerCase().includes(this.filter)) ||
      (room.last_user ?? '').toLowerCase().includes(this.filter))
    shown.sort((a, b) => compare(a[this.sortKey], b[this.sortKey]) * (this.descending ? -1 : 1))
    this.body.replaceChildren(...shown.map(row))
  }
}

/** @param {unknown} a @param {unknown} b */
function compare (a, b) {
  if (a === b) return 0
  if (a === null || a === undefined) return -1
  if (b === null || b === undefined) return 1
  if (Array.isArray(a) && Array.isArray(b)) return a.length - b.length
  if (typeof a === 'number' && typeof b === 'number') return a - b
  return String(a).localeCompare(String(b))
}

/** @param {RoomRow} room */
function row (room) {
  return h('tr', { 'data-testid': 'room-row', 'data-room': room.name }, [
    h('th', { scope: 'row' }, [h('a', { href: roomLink(room.name), text: room.name })]),
    h('td', { class: 'num', 'data-testid': 'room-connections', text: String(room.connections) }),
    h('td', { 'data-testid': 'room-users', text: room.users.join(', ') }),
    h('td', { class: 'num', text: size(room.log_bytes) }),
    h('td', { class: 'num', text: String(room.last_seq) }),
    h('td', { title: room.last_ts ? new Date(room.last_ts * 1000).toISOString() : '', text: ago(room.last_ts) }),
    h('td', { 'data-testid': 'room-last-user', text: room.last_ts ? who(room.last_user) : '—' }),
    h('td', { class: 'num', text: room.rate === null || room.rate === undefined ? '…' : String(room.rate) }),
    h('td', { 'data-testid': 'room-parked', class: room.parked.length ? 'error' : '', text: room.parked.join(', ') || '—' }),
    h('td', { class: room.refusals ? 'num error' : 'num', 'data-testid': 'room-refusals', title: 'edits a rule or the check hook partly undid', text: String(room.refusals) }),
    h('td', { text: room.loaded ? 'yes' : 'no' })
  ])
}

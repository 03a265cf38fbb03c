/**
 * One room: who is connected, its content as a live JSON tree, the change feed tailing live, the timeline, time
 * travel with restore, a diff between positions, named versions, and delivery state with a retry button. The change feed (SSE) drives the live parts:
 * each committed edit re-reads `/json` (at most a few times a second), extends the timeline and the slider.
 * @module room-view
 */
import { h } from '../demo/dom.js'
import { feedUrl, getJson, homeLink, postJson, roomPath } from './api.js'
import { time, who } from './format.js'
import { Timeline } from './timeline.js'
import { DeliveriesView } from './deliveries-view.js'
import { DiffView, TimeTravel } from './time-travel.js'
import { JsonTree } from './tree.js'

const PEOPLE_REFRESH_MS = 2000
const JSON_REFRESH_MS = 250
const FEED_SHOWN = 50
const FEED_BACKLOG = 20

export class RoomView {
  /** @param {string} room */
  constructor (room) {
    this.room = room
    this.tree = new JsonTree({ 'data-testid': 'json-tree' })
    /** @type {unknown} */
    this.content = null
    this.seq = 0
    this.seqLabel = h('span', { 'data-testid': 'room-seq' })
    this.people = h('ul', { class: 'people', 'data-testid': 'room-people' })
    this.feed = h('ol', { class: 'feed', 'data-testid': 'room-feed', reversed: true })
    this.notice = h('p', { class: 'status', role: 'status' })
    this.timeline = new Timeline(room, (seq) => { this.travel.show(seq) })
    this.travel = new TimeTravel(room, () => this.content)
    this.diff = new DiffView(room)
    this.versions = h('ul', { 'data-testid': 'versions' })
    this.deliveries = new DeliveriesView(room)
    /** @type {EventSource | null} */
    this.source = null
    this.peopleTimer = 0
    this.jsonTimer = 0
    this.stopped = false
    this.element = h('section', { class: 'room' }, [
      h('div', { class: 'toolbar' }, [h('a', { href: homeLink(), text: '← Rooms' }), h('h2', {}, [room, ' ', this.seqLabel])]),
      this.notice,
      h('div', { class: 'grid' }, [
        h('section', { class: 'card' }, [h('h3', { text: 'Connected now' }), this.people]),
        h('section', { class: 'card wide' }, [h('h3', { text: 'Content' }), this.tree.element]),
        this.timeline.element,
        h('section', { class: 'card' }, [h('h3', { text: 'Change feed' }), this.feed]),
        this.travel.element,
        this.diff.element,
        this.versionsCard(),
        this.deliveries.element
      ])
    ])
  }

  async start () {
    try {
      await this.refreshJson()
    } catch (error) {
      this.notice.textContent = `cannot read room: ${/** @type {Error} */ (error).message}`
      return
    }
    this.travel.extend(this.seq)
    this.travel.show(this.seq)
    this.diff.to.value = String(this.seq)
    this.timeline.load(this.seq)
    this.loadVersions()
    this.follow(Math.max(0, this.seq - FEED_BACKLOG)) // the last few edits, then live
    const people = async () => {
      await Promise.all([this.refreshPeople(), this.deliveries.refresh()])
      if (!this.stopped) this.peopleTimer = window.setTimeout(people, PEOPLE_REFRESH_MS)
    }
    people()
  }

  stop () {
    this.stopped = true
    this.source?.close()
    this.timeline.stop()
    window.clearTimeout(this.peopleTimer)
    window.clearTimeout(this.jsonTimer)
  }

  async refreshJson () {
    const answer = await getJson(roomPath(this.room, '/json'))
    if (answer.seq < this.seq) return // an older answer overtaken by a newer one
    this.seq = answer.seq
    this.content = answer.doc
    this.tree.render(answer.doc)
    this.seqLabel.textContent = `· seq ${answer.seq}`
    this.seqLabel.dataset.seq = String(answer.seq)
  }

  async refreshPeople () {
    try {
      const answer = await getJson(roomPath(this.room, '/connections'))
      /** @type {{ user: string | null, mode: string, kind: string }[]} */
      const list = answer.connections
      this.people.replaceChildren(...(list.length === 0
        ? [h('li', { text: 'nobody' })]
        : list.map((p) => h('li', { 'data-testid': 'room-person', text: `${who(p.user)} · ${p.mode} · ${p.kind}` }))))
    } catch (error) {
      this.people.replaceChildren(h('li', { class: 'error', text: /** @type {Error} */ (error).message }))
    }
  }

  /** @param {number} after tail the change feed from this seq */
  follow (after) {
    const source = new EventSource(feedUrl(this.room, after))
    this.source = source
    source.addEventListener('update', (event) => {
      const entry = JSON.parse(/** @type {MessageEvent} */ (event).data)
      this.feed.prepend(h('li', { 'data-testid': 'feed-entry', text: `#${entry.seq} ${who(entry.user)} · ${time(entry.ts)} · ${atob(entry.update).length} B` }))
      while (this.feed.children.length > FEED_SHOWN) this.feed.lastElementChild?.remove()
      this.timeline.add(entry)
      this.travel.extend(entry.seq)
      this.scheduleJson()
    })
    source.addEventListener('snapshot', () => this.scheduleJson())
    source.addEventListener('deleted', () => {
      this.notice.textContent = 'this room was deleted'
      source.close()
    })
    source.addEventListener('overflow', () => {
      source.close()
      if (!this.stopped) this.follow(this.seq)
    })
  }

  scheduleJson () {
    if (this.jsonTimer) return
    this.jsonTimer = window.setTimeout(async () => {
      this.jsonTimer = 0
      try { await this.refreshJson() } catch (error) { this.notice.textContent = /** @type {Error} */ (error).message }
    }, JSON_REFRESH_MS)
  }

  versionsCard () {
    const name = h('input', { type: 'text', placeholder: 'version name', 'aria-label': 'version name', 'data-testid': 'version-name' })
    const create = h('button', { type: 'submit', 'data-testid': 'version-create', text: 'Name the current seq' })
    const form = h('form', { class: 'toolbar' }, [name, create])
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      try {
        await postJson(roomPath(this.room, '/versions'), { name: name.value })
        name.value = ''
        await this.loadVersions()
      } catch (error) {
        this.versions.replaceChildren(h('li', { class: 'error', text: /** @type {Error} */ (error).message }))
      }
    })
    return h('section', { class: 'card' }, [h('h3', { text: 'Named versions' }), form, this.versions])
  }

  async loadVersions () {
    const answer = await getJson(`${roomPath(this.room, '/versions')}?limit=1000`)
    /** @type {{ name: string, seq: number }[]} */
    const versions = answer.versions
    this.versions.replaceChildren(...versions.map((v) => {
      const view = h('button', { type: 'button', class: 'link', text: `${v.name} (seq ${v.seq})` })
      view.addEventListener('click', () => { this.travel.show(v.seq) })
      return h('li', { 'data-testid': 'version-item' }, [view])
    }))
  }
}

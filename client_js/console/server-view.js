/**
 * The server at a glance: small charts over the last minutes sampled from `GET /v1/stats` every two seconds
 * (rates are differences between samples, so the server keeps no history for the page) and its settings.
 * @module server-view
 */
import { h } from '../demo/dom.js'
import { getJson } from './api.js'
import { size } from './format.js'

const REFRESH_MS = 2000
const KEPT = 150 // five minutes of samples

/** @typedef {{ ts: number, connections: number, rooms_loaded: number, memory_bytes: number | null, updates_total: number, commit_count: number, commit_seconds_sum: number, loop_stalls_over_50ms: number, settings: Record<string, unknown> }} Stats */

/** @type {{ label: string, value: (now: Stats, before: Stats | null) => number | null, format: (v: number) => string }[]} */
const CHARTS = [
  { label: 'Edits/s', value: (s, p) => p ? (s.updates_total - p.updates_total) / (s.ts - p.ts) : null, format: (v) => v.toFixed(1) },
  { label: 'Commit latency', value: (s, p) => p && s.commit_count > p.commit_count ? (s.commit_seconds_sum - p.commit_seconds_sum) / (s.commit_count - p.commit_count) * 1000 : null, format: (v) => `${v.toFixed(1)} ms` },
  { label: 'Loop stalls > 50 ms', value: (s, p) => p ? s.loop_stalls_over_50ms - p.loop_stalls_over_50ms : null, format: (v) => String(v) },
  { label: 'Connections', value: (s) => s.connections, format: (v) => String(v) },
  { label: 'Rooms loaded', value: (s) => s.rooms_loaded, format: (v) => String(v) },
  { label: 'Memory', value: (s) => s.memory_bytes, format: (v) => size(v) }
]

export class ServerView {
  constructor () {
    /** @type {Stats[]} */
    this.samples = []
    this.charts = h('div', { class: 'charts' })
    this.settings = h('pre', { class: 'settings' })
    this.element = h('details', { class: 'server', 'data-testid': 'server-stats' }, [
      h('summary', { text: 'Server' }), this.charts, h('details', {}, [h('summary', { text: 'Settings' }), this.settings])
    ])
    this.element.addEventListener('toggle', () => { if (this.element.open) this.draw() })
  }

  start () {
    const tick = async () => {
      try {
        /** @type {Stats} */
        const stats = await getJson('v1/stats')
        this.samples.push(stats)
        if (this.samples.length > KEPT) this.samples.shift()
        if (this.element.open) this.draw()
      } catch {
        // shown as the last sample; the rooms view reports an unreachable server
      }
      window.setTimeout(tick, REFRESH_MS)
    }
    tick()
  }

  draw () {
    const last = this.samples[this.samples.length - 1]
    if (!last) return
    this.settings.textContent = JSON.stringify(last.settings, null, 2)
    this.charts.replaceChildren(...CHARTS.map(({ label, value, format }) => {
      const points = this.samples.map((s, i) => value(s, i > 0 ? this.samples[i - 1] : null))
      const now = points[points.length - 1]
      return h('figure', { class: 'chart' }, [spark(points), h('figcaption', { text: `${label}: ${now === null ? '…' : format(now)}` })])
    }))
  }
}

/** @param {(number | null)[]} points */
function spark (points) {
  const values = points.map((v) => v ?? 0)
  const max = Math.max(1e-9, ...values)
  const step = 100 / Math.max(1, KEPT - 1)
  const offset = (KEPT - values.length) * step
  const line = values.map((v, i) => `${(offset + i * step).toFixed(1)},${(30 - v / max * 28).toFixed(1)}`).join(' ')
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('viewBox', '0 0 100 30')
  svg.setAttribute('preserveAspectRatio', 'none')
  svg.setAttribute('aria-hidden', 'true')
  const polyline = document.createElementNS('http://www.w3.org/2000/svg', 'polyline')
  polyline.setAttribute('points', line)
  svg.append(polyline)
  return svg
}

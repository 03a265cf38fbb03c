/**
 * A room's webhook and hook deliveries: each consumer's cursor and lag, a parked room's reason, and a retry button
 * that unparks it (`GET /deliveries`, `POST /deliveries/retry`, admin routes).
 * @module deliveries-view
 */
import { h } from '../demo/dom.js'
import { getJson, postJson, roomPath } from './api.js'

/** @typedef {{ consumer: string, cursor: number, lag: number, parked: { from_seq: number, to_seq: number, attempts: number, error: string } | null }} DeliveryState */

export class DeliveriesView {
  /** @param {string} room */
  constructor (room) {
    this.room = room
    this.list = h('ul', { class: 'deliveries', 'data-testid': 'deliveries' })
    this.element = h('section', { class: 'card' }, [h('h3', { text: 'Deliveries (webhook, hooks)' }), this.list])
  }

  async refresh () {
    try {
      const answer = await getJson(roomPath(this.room, '/deliveries'))
      /** @type {DeliveryState[]} */
      const states = answer.deliveries
      if (states.length === 0) {
        this.list.replaceChildren(h('li', { text: 'no webhook or on_change hook configured' }))
        return
      }
      this.list.replaceChildren(...states.map((state) => this.item(state)))
    } catch (error) {
      this.list.replaceChildren(h('li', { class: 'error', text: /** @type {Error} */ (error).message }))
    }
  }

  /** @param {DeliveryState} state */
  item (state) {
    const line = `${state.consumer}: delivered up to seq ${state.cursor}, ${state.lag} behind`
    if (state.parked === null) return h('li', { 'data-testid': 'delivery', text: line })
    const retry = h('button', { type: 'button', 'data-testid': 'retry-button', text: 'Retry now' })
    retry.addEventListener('click', async () => {
      retry.disabled = true
      try {
        await postJson(roomPath(this.room, '/deliveries/retry'), {})
      } finally {
        await this.refresh()
      }
    })
    const p = state.parked
    return h('li', { 'data-testid': 'delivery' }, [
      line,
      h('p', { class: 'error', 'data-testid': 'parked-reason', text: `parked at seq ${p.from_seq}..${p.to_seq} after ${p.attempts} attempts: ${p.error}` }),
      retry
    ])
  }
}

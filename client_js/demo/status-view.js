/**
 * The always-visible connection badge.
 * @module status-view
 */

/**
 * Human text for a status; always contains the state's keyword (offline, connecting, synced,
 * saved) so people and tests read the same thing.
 * @param {import('../src/status.js').StatusSnapshot} status
 * @returns {string}
 */
export function statusText ({ state, pending, error }) {
  const queued = pending > 0 ? ` · ${pending} queued` : ''
  switch (state) {
    case 'offline': return error ? `offline · ${error}` : `offline${queued}`
    case 'connecting': return `connecting…${queued}`
    case 'syncing': return `connecting · syncing${queued}`
    case 'synced': return pending > 0 ? `synced · saving ${pending}…` : 'synced'
    case 'saved': return 'saved · all changes stored'
  }
}

/**
 * @param {HTMLElement} badge
 * @returns {(status: import('../src/status.js').StatusSnapshot) => void}
 */
export function createStatusView (badge) {
  const label = badge.querySelector('.label') ?? badge
  return (status) => {
    label.textContent = statusText(status)
    badge.dataset.state = status.state
    badge.dataset.pending = String(status.pending)
    badge.title = status.seq > 0 ? `server log position ${status.seq}` : ''
  }
}

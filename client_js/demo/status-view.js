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
export function statusText ({ state, pending, error, received }) {
  const queued = pending > 0 ? ` · ${pending} queued` : ''
  switch (state) {
    case 'offline': return error ? `offline · ${error}` : `offline${queued}`
    case 'connecting': return `connecting…${queued}`
    case 'syncing': return `syncing…${received > 0 ? ` ${formatBytes(received)} received` : ''}${queued}`
    case 'synced': return pending > 0 ? `synced · saving ${pending}…` : 'synced'
    case 'saved': return 'saved · all changes stored'
  }
}

/**
 * @param {number} bytes
 * @returns {string} e.g. "12.3 MB"
 */
function formatBytes (bytes) {
  if (bytes < 1e6) return `${Math.round(bytes / 1e3)} kB`
  return `${(bytes / 1e6).toFixed(1)} MB`
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

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
export function statusText ({ state, pending, error, received, rejected }) {
  const queued = pending > 0 ? ` · ${pending} queued` : ''
  const text = stateText(state, pending, error, received, queued)
  return rejected ? `${text} · ${refusalText(rejected)}` : text
}

/**
 * @param {string} state
 * @param {number} pending
 * @param {string | null} error
 * @param {number} received
 * @param {string} queued
 * @returns {string}
 */
function stateText (state, pending, error, received, queued) {
  switch (state) {
    case 'offline': return error ? `offline · ${error}` : `offline${queued}`
    case 'connecting': return `connecting…${queued}`
    case 'syncing': return `syncing…${received > 0 ? ` ${formatBytes(received)} received` : ''}${queued}`
    case 'synced': return pending > 0 ? `synced · saving ${pending}…` : 'synced'
    case 'saved': return 'saved · all changes stored'
  }
  return state
}

/**
 * A rule's refusal in the chat's words ("rule: only the author can delete messages[3]").
 * @param {string} reason
 * @returns {string}
 */
function refusalText (reason) {
  const words = reason.replace(/^rule:\s*/, '')
  if (/^only the author can delete /.test(words)) return 'undone: only the author can delete this message'
  if (/^only the author can change /.test(words)) return 'undone: only the author can edit this message'
  if (/^only its own user can set /.test(words)) return 'undone: only its own user can set a reaction'
  return `undone: ${words}`
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

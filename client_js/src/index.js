/**
 * Performer Sync browser client: a thin layer over yjs, y-websocket and y-indexeddb.
 * @module performer-sync-client
 */
export { connectRoom, replicaName } from './connect.js'
export { Status } from './status.js'
export { watchPending } from './resync.js'
export { backoffDelay, isPermanentClose, isSlowDownClose } from './backoff.js'
export { PendingTracker, isUpdateMessage, MESSAGE_SAVED } from './ack.js'
export { fetchHistory, fetchDocAt, restoreVersion, nameVersion, fetchVersions } from './history.js'

/**
 * Who was here when the connection dropped.
 *
 * Awareness only knows who is online *now*, and y-websocket forgets every other client as soon as
 * its socket closes. An offline tab would then either keep showing stale peers as online (while
 * the socket lingers) or show nobody. The book remembers the peers seen while connected and,
 * while this tab is offline, shows them as "last seen" at the moment the connection was lost.
 * After reconnecting, those who are back are online again; those who are not are dropped once the
 * server has had time to send the current presence.
 * @module presence-book
 */

/** How long after reconnecting a remembered peer may take to show up again before it is dropped. */
export const REJOIN_GRACE_MS = 5000

/**
 * @typedef {import('./presence-view.js').Peer & { lastSeen: number | null }} ListedPeer
 * `lastSeen` is null while the peer counts as online, else when we last knew them to be online (ms)
 */

export class PresenceBook {
  /** @param {() => number} [now] */
  constructor (now = Date.now) {
    this.now = now
    /** @type {Map<string, ListedPeer>} */
    this.peers = new Map()
    this.live = false
    /** when the current connection was established (ms), for the rejoin grace */
    this.liveSince = 0
  }

  /**
   * Take the current awareness peers and whether this tab is connected right now.
   * @param {import('./presence-view.js').Peer[]} present
   * @param {boolean} live
   * @returns {ListedPeer[]} self first, then by name
   */
  update (present, live) {
    const now = this.now()
    if (live && !this.live) this.liveSince = now
    if (!live && this.live) {
      // The connection just dropped: everybody we saw online was there until now.
      for (const peer of this.peers.values()) if (!peer.self && peer.lastSeen === null) peer.lastSeen = now
    }
    this.live = live
    const names = new Set(present.map((peer) => peer.name))
    for (const [name, peer] of this.peers) {
      if (names.has(name)) continue
      // Gone while we were connected: they left (or a stale name of ours). Remembered from
      // before a drop and still absent well after reconnecting: they left meanwhile.
      if (peer.self || (live && (peer.lastSeen === null || now - this.liveSince >= REJOIN_GRACE_MS))) this.peers.delete(name)
    }
    for (const peer of present) {
      const known = this.peers.get(peer.name)
      const lastSeen = live || peer.self ? null : (known?.lastSeen ?? now)
      this.peers.set(peer.name, { ...peer, lastSeen })
    }
    return this.list()
  }

  /** @returns {ListedPeer[]} */
  list () {
    return [...this.peers.values()].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name))
  }
}

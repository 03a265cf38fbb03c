/* Service worker: keeps the app shell so the chat and the document page open without a network.
 * Network first (so a new build is picked up at once), cache as the fallback. Only the shell
 * is handled here; documents live in IndexedDB and the WebSocket is never intercepted. */
// @ts-check
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self))
const CACHE = 'performer-shell-e57b241354f3'
const SHELL = ['/', '/static/app.js', '/static/app.css', '/static/fonts/emoji.woff2', '/doc', '/static/doc.js', '/static/doc.css']
const NETWORK_TIMEOUT_MS = 4000

sw.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => sw.skipWaiting()))
})

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key.startsWith('performer-shell-') && key !== CACHE).map((key) => caches.delete(key))))
      .then(() => sw.clients.claim())
  )
})

sw.addEventListener('fetch', (event) => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== sw.location.origin || !SHELL.includes(url.pathname)) return
  // "/?room=x&user=y" and "/" are the same page: one cache entry (and "/doc?..." and "/doc").
  event.respondWith(networkFirst(request, url.pathname))
})

/**
 * @param {Request} request
 * @param {string} key
 * @returns {Promise<Response>}
 */
async function networkFirst (request, key) {
  const cache = await caches.open(CACHE)
  try {
    const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS)
    if (response.ok) await cache.put(key, response.clone())
    return response
  } catch (error) {
    const cached = await cache.match(key)
    if (cached) return cached
    throw error
  }
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
function withTimeout (promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('network timeout')), ms)
    promise.then((value) => { clearTimeout(timer); resolve(value) }, (error) => { clearTimeout(timer); reject(error) })
  })
}

// One client joining the big room, in its own worker thread so that decoding
// a large document neither blocks the small room's clients nor the other
// joiners (each real client would be its own process). Posts 'ready' once
// loaded, starts on 'go', posts its timings when it holds the whole document.
import { parentPort, workerData } from 'node:worker_threads'
import { SimClient } from './client.mjs'

const { url, flavor, room, items, chars, lastItem, timeoutMs } = workerData
parentPort.once('message', async () => {
  const c = new SimClient({ url, flavor, room })
  const arr = c.doc.getArray('items')
  const complete = () => arr.length === items && c.text.length === chars && arr.get(items - 1) === lastItem
  let doneAt = null
  let receivedAt = null
  const finished = new Promise((resolve) => {
    c.doc.on('afterTransaction', () => {
      if (doneAt === null && complete()) {
        doneAt = performance.now()
        receivedAt = c.lastMsgAt
        resolve()
      }
    })
  })
  const result = { failures: [] }
  try {
    const timer = new Promise((resolve, reject) => setTimeout(() => reject(new Error(`incomplete after ${timeoutMs} ms: ${arr.length} items, ${c.text.length} chars`)), timeoutMs).unref())
    await Promise.race([c.connect(timeoutMs).then(() => finished), timer])
    Object.assign(result, {
      sync_step2_ms: c.syncedAt - c.t0, // the server's first answer (may precede the content: y-websocket + y-leveldb)
      complete_ms: doneAt - c.t0, // socket opened -> the whole document applied
      received_ms: receivedAt - c.t0, // ... -> the message that completed it arrived
      apply_ms: doneAt - receivedAt, // client-side decode + apply of that message
      bytes: c.bytesIn
    })
  } catch (err) {
    result.failures.push(String(err && err.message ? err.message : err))
  }
  c.close()
  parentPort.postMessage(result)
})
parentPort.postMessage('ready')

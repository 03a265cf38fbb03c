// Durable ingest across server processes: R rooms x 2 writers, the two writers of a
// room connected to different processes when there are several. Each writer keeps at
// most WINDOW edits not yet acknowledged as saved (closed loop), for a fixed time.
// Prints `RESULT {json}`: acknowledged updates/s, and whether every room converged.
// Usage: node ingest.mjs '{"bases": ["ws://h:p/rooms", ...], "rooms": 50, "seconds": 8}'
import { SimClient, connectAll } from '../node/client.mjs'
import { waitUntil } from '../node/stats.mjs'

const WINDOW = 4
const config = JSON.parse(process.argv[2])
const { bases, rooms, seconds } = config
const hard = setTimeout(() => { console.log('RESULT ' + JSON.stringify({ failures: ['hard deadline'] })); process.exit(1) }, (seconds + 60) * 1000)

const clients = []
for (let r = 0; r < rooms; r++) {
  for (let w = 0; w < 2; w++) {
    const base = bases[(r + w) % bases.length]
    clients.push(new SimClient({ url: `${base}/${encodeURIComponent(`ingest-${r}`)}?ack=1`, flavor: 'path', room: `ingest-${r}` }))
  }
}
await connectAll(clients)

let running = true
const pump = (c) => {
  while (running && c.updatesSent - c.saved < WINDOW) c.text.insert(c.text.length, 'ab')
}
for (const c of clients) {
  c.onSaved = () => pump(c)
  pump(c)
}
const started = performance.now()
await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
running = false
const failures = []
const allSaved = await waitUntil(() => clients.every((c) => c.saved >= c.updatesSent), 30000)
const elapsed = (performance.now() - started) / 1000
if (!allSaved) failures.push('not every update acknowledged as saved')
const converged = await waitUntil(() => {
  for (let i = 0; i < clients.length; i += 2) {
    if (clients[i].text.toString() !== clients[i + 1].text.toString()) return false
  }
  return true
}, 30000)
if (!converged) failures.push('the two writers of a room did not converge')
const updates = clients.reduce((a, c) => a + c.updatesSent, 0)
for (const c of clients) c.close()
clearTimeout(hard)
console.log('RESULT ' + JSON.stringify({ updates, seconds: elapsed, updatesPerS: updates / elapsed, failures }))
process.exit(0)

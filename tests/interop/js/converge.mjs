// One of N concurrent editors of a room: text, array and map edits interleaved with the
// other editors, then waits until it holds everyone's edits and prints its snapshot.
//
// args: --url=ws://HOST:PORT/rooms --room=R --index=I --clients=N --edits=E --seed=S
import { args, connect, emit, run, sleep, snapshot, waitDoc, waitSynced } from './lib.mjs'

const DEADLINE_MS = 30000

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
const random = (seed) => () => {
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Every editor inserts the same-length tokens, so all know the final text length. */
const token = (index, k) => `<${String(index).padStart(2, '0')}:${String(k).padStart(3, '0')}ü>`

run(async () => {
  const { url, room } = args()
  const index = Number(args().index)
  const clients = Number(args().clients)
  const edits = Number(args().edits)
  const rand = random(Number(args().seed) * 1000 + index)
  const { doc, provider } = connect(url, room)
  await waitSynced(provider, DEADLINE_MS)
  const text = doc.getText('text')
  const list = doc.getArray('list')
  const map = doc.getMap('map')
  for (let k = 0; k < edits; k++) {
    doc.transact(() => {
      text.insert(Math.floor(rand() * (text.length + 1)), token(index, k))
      list.insert(Math.floor(rand() * (list.length + 1)), [{ index, k }])
      map.set(`${index}/${k}`, { index, k, note: 'välue 🌊' })
      map.set('contested', index)
    })
    await sleep(Math.floor(rand() * 15))
  }
  const total = clients * edits
  await waitDoc('every editor\'s edits', doc, () =>
    list.length === total && text.length === total * token(0, 0).length && map.size === total + 1,
  DEADLINE_MS)
  emit(snapshot(doc))
})

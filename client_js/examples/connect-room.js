// The browser client: edit a room, then wait until the server has it on disk.
import { connectRoom } from '../src/index.js'

const room = connectRoom({ url: 'ws://127.0.0.1:8080/rooms', room: 'lobby', user: { name: 'alice' } })
room.status.subscribe(({ state, pending }) => console.log(state, pending)) // offline|connecting|syncing|synced|saved
room.doc.getArray('items').push(['hello']) // works offline too: kept in IndexedDB until sent
await room.status.until((s) => s.state === 'saved', 10000) // durable on the server
console.log(room.doc.getArray('items').toJSON())
await room.destroy()

// Any stock Yjs client works unchanged: y-websocket's provider against /rooms.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const doc = new Y.Doc()
const provider = new WebsocketProvider('ws://127.0.0.1:8080/rooms', 'lobby', doc)
provider.once('sync', () => {
  console.log('synced', doc.getArray('items').toJSON())
  provider.destroy()
  doc.destroy() // and with it the provider's awareness
})

// Tiptap's provider: the same rooms through the Hocuspocus protocol at /hocuspocus.
import * as Y from 'yjs'
import { HocuspocusProvider } from '@hocuspocus/provider'

const token = '' // a JWT from `performer token` when the server has an auth secret
const doc = new Y.Doc()
const provider = new HocuspocusProvider({ url: 'ws://127.0.0.1:8080/hocuspocus', name: 'notes', document: doc, token })
provider.on('synced', () => doc.getText('body').insert(0, 'hello'))
provider.on('unsyncedChanges', () => {
  if (provider.isSynced && !provider.hasUnsyncedChanges) { // on the server's disk
    console.log('saved', doc.getText('body').toString())
    provider.destroy()
  }
})

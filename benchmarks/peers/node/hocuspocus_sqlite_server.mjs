// Hocuspocus 3.x with its SQLite extension (@hocuspocus/extension-sqlite), the
// durable setup its documentation shows: the whole document is written to a
// SQLite file by Hocuspocus's store hook, which runs 2 s after the last change
// (at most 10 s after the first; the server's defaults). SQLite commits with its
// default synchronous=FULL, so each store is fsynced; an edit is therefore on
// disk only once its room's debounced store has run, not when clients see it.
// HOCUSPOCUS_SQLITE names the database file. Bound to 127.0.0.1:0; prints
// `LISTENING http://HOST:PORT` like our server. On SIGTERM the server's destroy
// stores every loaded document; the extension does not wait for its own writes, so
// the wrapper closes the database (which finishes queued statements) before exiting.
// Hocuspocus's own signal handler (`stopOnSignals`, on by default) is turned off: it
// exits as soon as destroy returns, before that last write has run, and a room whose
// debounced store was still pending at SIGTERM came back empty (1 restart in 8-10 here).
import { Server } from '@hocuspocus/server'
import { SQLite } from '@hocuspocus/extension-sqlite'

const host = '127.0.0.1'
const database = process.env.HOCUSPOCUS_SQLITE
if (!database) throw new Error('HOCUSPOCUS_SQLITE (the database file) is not set')
const sqlite = new SQLite({ database })
const server = new Server({
  port: 0,
  address: host,
  quiet: true,
  stopOnSignals: false, // ours below closes the database first
  extensions: [sqlite],
})
await server.listen()
process.stdout.write(`LISTENING http://${host}:${server.address.port}\n`)
process.on('SIGTERM', async () => {
  await server.destroy()
  await new Promise((resolve) => sqlite.db.close(resolve))
  process.exit(0)
})

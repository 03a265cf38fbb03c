// Hocuspocus 3.x with no extensions: what `new Server()` gives a user out of the
// box. Documents live in memory only (no extension-database / -sqlite is
// configured, so nothing is persisted). Bound to 127.0.0.1:0; prints
// `LISTENING http://HOST:PORT` like our server.
import { Server } from '@hocuspocus/server'

const host = '127.0.0.1'
const server = new Server({ port: 0, address: host, quiet: true })
await server.listen()
process.stdout.write(`LISTENING http://${host}:${server.address.port}\n`)
process.on('SIGTERM', async () => {
  await server.destroy()
  process.exit(0)
})

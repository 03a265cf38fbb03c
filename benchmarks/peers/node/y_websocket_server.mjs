// The reference y-websocket server (@y/websocket-server), exactly as its own
// bin/server.js wires it, but bound to 127.0.0.1:0 and printing the chosen port
// in the same `LISTENING http://HOST:PORT` form as our server. Without
// YPERSISTENCE documents live in memory only; with YPERSISTENCE=DIR the package
// stores every update with y-leveldb (its built-in persistence), and on SIGTERM
// this wrapper waits for y-leveldb's queued writes before exiting.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { setupWSConnection, getPersistence } from '@y/websocket-server/utils'

const host = '127.0.0.1'
const port = Number(process.env.PORT || 0)
const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' })
  res.end('okay')
})
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(port, host, () => {
  process.stdout.write(`LISTENING http://${host}:${server.address().port}\n`)
})
process.on('SIGTERM', async () => {
  const persistence = getPersistence()
  if (persistence) await persistence.provider.destroy()
  process.exit(0)
})

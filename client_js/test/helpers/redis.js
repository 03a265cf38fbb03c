/**
 * A real redis-server for tests that run several `performer serve --redis` processes: its own port and
 * directory, append-only with fsync always (as tests/conftest.py starts it for the Python tests).
 */
import { spawn } from 'node:child_process'
import net from 'node:net'
import { makeDataDir, removeDataDir } from './server.js'
import { waitFor } from './wait.js'

/**
 * @typedef {object} RunningRedis
 * @property {string} url e.g. redis://127.0.0.1:41234/0
 * @property {() => Promise<void>} stop kill it and remove its directory
 */

/** @returns {Promise<number>} a free loopback port */
export function freePort () {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}

/** @param {{ timeoutMs?: number }} [options] @returns {Promise<RunningRedis>} */
export async function startRedis ({ timeoutMs = 20000 } = {}) {
  const dir = await makeDataDir()
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' })
  /** @type {Promise<void>} */
  const exited = new Promise((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
    await removeDataDir(dir)
  }
  try {
    await waitFor(() => new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true) })
      socket.once('error', () => resolve(false))
    }), { timeoutMs, what: 'redis-server accepting connections' })
  } catch (error) {
    await stop()
    throw error
  }
  return { url: `redis://127.0.0.1:${port}/0`, stop }
}

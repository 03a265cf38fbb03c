/**
 * Start and stop the real `performer serve` process for tests.
 *
 * The binary defaults to the repository's virtualenv (`../.venv/bin/performer` from client_js);
 * PERFORMER_BIN overrides it (e.g. a different install).
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const clientRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const repoRoot = path.resolve(clientRoot, '..')
export const performerBin = process.env.PERFORMER_BIN ?? path.join(repoRoot, '.venv', 'bin', 'performer')

/**
 * @typedef {object} RunningServer
 * @property {string} httpUrl e.g. http://127.0.0.1:41234
 * @property {string} wsUrl e.g. ws://127.0.0.1:41234/rooms
 * @property {string} dataDir
 * @property {() => string} output everything the process printed so far (for failure messages)
 * @property {() => Promise<void>} stop SIGTERM, wait for exit (SIGKILL after a deadline)
 * @property {() => Promise<void>} kill SIGKILL (a crash), wait for exit
 */

/** @returns {Promise<string>} a fresh temporary data directory */
export function makeDataDir () {
  return mkdtemp(path.join(tmpdir(), 'performer-client-test-'))
}

/** @param {string} dir */
export function removeDataDir (dir) {
  return rm(dir, { recursive: true, force: true })
}

/**
 * @param {{ dataDir: string, port?: number, extraArgs?: string[], timeoutMs?: number }} options
 * @returns {Promise<RunningServer>}
 */
export function startServer ({ dataDir, port = 0, extraArgs = [], timeoutMs = 20000 }) {
  const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--data', dataDir, ...extraArgs]
  const child = spawn(performerBin, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stderr.on('data', (chunk) => { log += chunk })
  /** @type {Promise<void>} */
  const exited = new Promise((resolve) => child.once('exit', () => {
    // A worker process of a killed server can hold its output pipes open for a while:
    // once the server itself is gone its output is not wanted, and open pipes would keep
    // the test process alive.
    child.stdout.destroy()
    child.stderr.destroy()
    resolve()
  }))

  async function stop () {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000)
    await exited
    clearTimeout(killer)
  }

  async function kill () {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await exited
  }

  return new Promise((resolve, reject) => {
    let stdout = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no LISTENING line from ${performerBin} within ${timeoutMs} ms:\n${stdout}${log}`))
    }, timeoutMs)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`cannot start ${performerBin}: ${error.message}`))
    })
    const onEarlyExit = (/** @type {number | null} */ code) => {
      clearTimeout(timer)
      reject(new Error(`server exited early (${code}):\n${stdout}${log}`))
    }
    child.once('exit', onEarlyExit)
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      log += chunk
      const match = /LISTENING (http:\/\/[^\s]+)/.exec(stdout)
      if (!match) return
      clearTimeout(timer)
      child.off('exit', onEarlyExit)
      const httpUrl = match[1].replace(/\/$/, '')
      resolve({
        httpUrl,
        wsUrl: httpUrl.replace(/^http/, 'ws') + '/rooms',
        dataDir,
        output: () => log,
        stop,
        kill
      })
    })
  })
}

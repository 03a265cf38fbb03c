// Entry point of the load generator: `node loadgen.mjs '<json config>'`.
// Runs one workload against one server and prints one line
// `RESULT {json}` on stdout. The config carries the server's flavor, base URL,
// pid (for /proc CPU and RSS readings) and the workload's parameters.
import * as workloads from './workloads.mjs'

const cfg = JSON.parse(process.argv[2])
const run = workloads[cfg.workload]
const hardStop = setTimeout(() => {
  process.stdout.write(`RESULT ${JSON.stringify({ failures: ['load generator hard deadline'] })}\n`)
  process.exit(2)
}, cfg.hardDeadlineMs || 600000)
hardStop.unref()
try {
  if (!run) throw new Error(`unknown workload ${cfg.workload}`)
  const result = await run(cfg)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
  process.exit(0)
} catch (err) {
  process.stdout.write(`RESULT ${JSON.stringify({ failures: [String(err && err.stack ? err.stack : err)] })}\n`)
  process.exit(1)
}

// Entry point of the load generator: `node loadgen.mjs '<json config>'`.
// Runs one workload against one server and prints one line
// `RESULT {json}` on stdout. The config carries the server's flavor, base URL,
// pid (for /proc CPU and RSS readings) and the workload's parameters.
// `edits` with `processes` > 1 spreads its rooms over that many processes
// (shards.mjs); each shard hands its result to this one over IPC.
import * as workloads from './workloads.mjs'
import { runSharded } from './shards.mjs'

const cfg = JSON.parse(process.argv[2])
const sharded = cfg.workload === 'edits' && (cfg.processes || 1) > 1
const run = sharded ? runSharded : workloads[cfg.workload]
const report = (result, code) => {
  if (cfg.shard) process.send({ result }, () => process.exit(code))
  else {
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
    process.exit(code)
  }
}
const hardStop = setTimeout(() => report({ failures: ['load generator hard deadline'] }, 2), cfg.hardDeadlineMs || 600000)
hardStop.unref()
try {
  if (!run) throw new Error(`unknown workload ${cfg.workload}`)
  report(await run(cfg), 0)
} catch (err) {
  report({ failures: [String(err && err.stack ? err.stack : err)] }, 1)
}

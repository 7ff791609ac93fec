/**
 * `npm start`: the coordinator and one process per GPU of the topology on
 * this machine, loopback only. Prints the URL when every GPU has registered;
 * Ctrl-C or SIGTERM stops everything. A GPU process that dies is restarted
 * and comes back with empty VRAM.
 *
 *   npm start -- [--gpus 4] [--vram 256MiB] [--port 7070] [--topology FILE]
 *   (or GPUSVM_GPUS, GPUSVM_VRAM, GPUSVM_PORT, GPUSVM_TOPOLOGY)
 */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { parseFlags, intSetting, setting } from '../../shared/config/args.js'
import { formatSize } from '../../shared/units.js'
import { sleep } from '../../shared/util/deadline.js'
import { loadTopology } from '../coordinator/topology/load.js'
import { Supervisor } from './supervisor.js'

const here = dirname(fileURLToPath(import.meta.url))
const flags = parseFlags(process.argv.slice(2))
const port = intSetting(flags, 'port', 'GPUSVM_PORT', 7070)
const host = '127.0.0.1'
const topology = loadTopology(flags)
const logLevel = setting(flags, 'log-level', 'GPUSVM_LOG_LEVEL') ?? 'warn'
const passthrough = ['--log-level', logLevel]
const deadline = setting(flags, 'invalidate-deadline-ms', 'GPUSVM_INVALIDATE_DEADLINE_MS')
if (deadline !== undefined) passthrough.push('--invalidate-deadline-ms', deadline)

const sup = new Supervisor()
let exitCode = 0
let stopping: Promise<void> | null = null
const stop = async (code: number): Promise<void> => {
  stopping ??= (async () => {
    exitCode = code
    process.stdout.write('gpusvm-emu: stopping...\n')
    await sup.stop(5000, 'coordinator')
    process.exit(exitCode)
  })()
  await stopping
}
sup.onFatal = (name, code) => {
  process.stderr.write(`gpusvm-emu: ${name} exited (${code ?? '?'}); stopping\n`)
  void stop(1)
}
sup.onRestart = (name) => { process.stderr.write(`gpusvm-emu: restarting ${name}\n`) }
process.on('SIGINT', () => { void stop(0) })
process.on('SIGTERM', () => { void stop(0) })

const coordinatorArgs = [join(here, '../coordinator/main.js'), '--port', String(port), '--host', host, ...passthrough]
const topoFile = setting(flags, 'topology', 'GPUSVM_TOPOLOGY')
if (topoFile !== undefined && topoFile !== '') coordinatorArgs.push('--topology', topoFile)
else coordinatorArgs.push('--gpus', String(topology.gpus.length), '--vram', String(topology.gpus[0]?.vram ?? 0))
sup.start({ name: 'coordinator', args: coordinatorArgs, restart: false })
for (const g of topology.gpus) {
  sup.start({
    name: `gpu${g.id}`,
    restart: true,
    args: [join(here, '../gpu/main.js'), '--gpu', String(g.id), '--vram', String(g.vram), '--coordinator-port', String(port), '--host', host, ...passthrough]
  })
}

const url = `http://${host}:${port}`
const t0 = Date.now()
for (;;) {
  if (stopping !== null) break
  try {
    const r = await fetch(`${url}/readyz`)
    if (r.ok) break
  } catch {}
  if (Date.now() - t0 > 30_000) {
    process.stderr.write('gpusvm-emu: the cluster did not become ready in 30 s\n')
    await stop(1)
  }
  await sleep(100)
}
const gpus = topology.gpus.map((g) => `gpu${g.id} ${formatSize(g.vram)}`).join(', ')
const links = topology.links.map((l) => `gpu${l.a}-gpu${l.b}`).join(', ') || 'none'
process.stdout.write(`gpusvm-emu ready at ${url}  (${gpus}; links ${links})\n  API docs: ${url}/documentation   Ctrl-C stops everything\n`)

/**
 * The coordinator process: the REST front door on --port (default 7070),
 * the simulated CPU side, and the endpoint GPU processes register on.
 *
 *   node dist/services/coordinator/main.js [--port 7070] [--host 127.0.0.1]
 *        [--gpus 4 --vram 256MiB | --topology FILE] [--invalidate-deadline-ms 5000]
 */
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { parseFlags, intSetting, setting } from '../../shared/config/args.js'
import { Coordinator } from './coordinator.js'
import { buildCoordinatorApp } from './http/app.js'
import { loadTopology } from './topology/load.js'

const flags = parseFlags(process.argv.slice(2))
const log = pino({ level: setting(flags, 'log-level', 'GPUSVM_LOG_LEVEL') ?? 'info', base: { service: 'coordinator', pid: process.pid } })
const port = intSetting(flags, 'port', 'GPUSVM_PORT', 7070)
const host = setting(flags, 'host', 'GPUSVM_HOST') ?? '127.0.0.1'
const topology = loadTopology(flags)
const coordinator = new Coordinator({
  topology,
  invalidateDeadlineMs: intSetting(flags, 'invalidate-deadline-ms', 'GPUSVM_INVALIDATE_DEADLINE_MS', 5000),
  log: log.child({ component: 'core' })
})
const app = await buildCoordinatorApp({ coordinator, logger: log })

closeWithGrace({ delay: 5000 }, async ({ err, signal }) => {
  if (err !== undefined) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  await app.close()
  await coordinator.close()
})

// The launcher's IPC channel closing means the launcher is gone: do not outlive it.
if (process.send !== undefined) process.on('disconnect', () => { process.kill(process.pid, 'SIGTERM') })

await app.listen({ port, host })
log.info({ url: `http://${host}:${port}`, gpus: topology.gpus.map((g) => g.id) }, 'coordinator listening')

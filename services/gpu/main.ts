/**
 * A GPU process: one emulated device. It serves /healthz, /readyz and
 * /metrics on its port, connects to the coordinator and registers. If the
 * control connection drops, the coordinator has declared this GPU lost and
 * poisoned its pages; the process then starts over with empty VRAM and
 * registers again, as a restarted GPU would.
 *
 *   node dist/services/gpu/main.js --gpu 0 --vram 256MiB
 *        [--coordinator ws://127.0.0.1:7070/v1/gpu-link] [--port 7071] [--host 127.0.0.1]
 */
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { parseFlags, intSetting, setting } from '../../shared/config/args.js'
import { parseSize } from '../../shared/units.js'
import { connectWs } from '../../shared/transport/ws.js'
import { sleep } from '../../shared/util/deadline.js'
import { attachToCoordinator, type AttachedGpu } from './serve.js'
import { buildGpuApp } from './http/app.js'

const flags = parseFlags(process.argv.slice(2))
const gpu = intSetting(flags, 'gpu', 'GPUSVM_GPU_ID', 0)
const vramBytes = parseSize(setting(flags, 'vram', 'GPUSVM_VRAM') ?? '256MiB')
const coordinatorPort = intSetting(flags, 'coordinator-port', 'GPUSVM_PORT', 7070)
const host = setting(flags, 'host', 'GPUSVM_HOST') ?? '127.0.0.1'
const coordinatorUrl = setting(flags, 'coordinator', 'GPUSVM_COORDINATOR') ?? `ws://127.0.0.1:${coordinatorPort}/v1/gpu-link`
const port = intSetting(flags, 'port', 'GPUSVM_GPU_PORT', coordinatorPort + 1 + gpu)
const log = pino({ level: setting(flags, 'log-level', 'GPUSVM_LOG_LEVEL') ?? 'info', base: { service: `gpu${gpu}`, pid: process.pid } })

let current: AttachedGpu | null = null
let stopping = false
const app = await buildGpuApp({ gpu, device: () => current?.device ?? null, logger: log })

closeWithGrace({ delay: 5000 }, async ({ err, signal }) => {
  stopping = true
  if (err !== undefined) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  current?.peer.close('gpu shutting down')
  await app.close()
})
if (process.send !== undefined) process.on('disconnect', () => { process.kill(process.pid, 'SIGTERM') })

await app.listen({ port, host })

let backoff = 100
// The launcher starts GPUs beside the coordinator: the first refusals are expected.
let failures = 0
while (!stopping) {
  try {
    const conn = await connectWs(coordinatorUrl, 'coordinator')
    let attached: AttachedGpu
    try {
      attached = await attachToCoordinator(conn, { gpu, vramBytes, log })
    } catch (err) {
      conn.close('registration failed')
      throw err
    }
    current = attached
    backoff = 100
    failures = 0
    log.info({ owner: attached.device.owner, instance: attached.instance, coordinator: coordinatorUrl }, `gpu${gpu} online`)
    const reason = await new Promise<string>((resolve) => { attached.peer.onClose(resolve) })
    current = null
    if (!stopping) log.warn({ reason }, 'lost the coordinator: starting over with empty VRAM')
  } catch (err) {
    current = null
    failures++
    if (!stopping) log[failures > 5 ? 'warn' : 'info']({ err: (err as Error).message, retryInMs: backoff }, 'cannot register with the coordinator yet')
  }
  if (!stopping) {
    await sleep(backoff)
    backoff = Math.min(backoff * 2, 2000)
  }
}

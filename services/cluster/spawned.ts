/**
 * A cluster of real processes on this machine (coordinator plus one process
 * per GPU, from dist/), on a free block of loopback ports, for integration
 * tests, benchmarks and soak runs. stop() leaves no process behind; GPU
 * processes can be killed (and are restarted if asked, as the launcher does).
 */
import { fileURLToPath } from 'node:url'
import { dirname, join, sep } from 'node:path'
import { Supervisor } from '../launcher/supervisor.js'
import { freePortBlock, waitReady } from './free-ports.js'

const here = dirname(fileURLToPath(import.meta.url))
/** The compiled services: beside this file when it runs from dist/, else under dist/ (tests run the sources). */
const services = here.includes(`${sep}dist${sep}`) ? join(here, '..') : join(here, '../../dist/services')

export interface SpawnOptions {
  gpus?: number
  vram?: string
  topologyFile?: string
  /** Restart GPU processes that die (the launcher's behaviour). */
  restart?: boolean
  invalidateDeadlineMs?: number
  logLevel?: string
  readyTimeoutMs?: number
}

export interface SpawnedCluster {
  url: string
  port: number
  gpuPid: (gpu: number) => number | undefined
  coordinatorPid: () => number | undefined
  /** Sends a signal to a GPU process (SIGKILL: it dies at once). */
  signalGpu: (gpu: number, signal: NodeJS.Signals) => void
  waitReady: (timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

export async function spawnCluster (opts: SpawnOptions = {}): Promise<SpawnedCluster> {
  const gpus = opts.gpus ?? 1
  const port = await freePortBlock(gpus + 1)
  const url = `http://127.0.0.1:${port}`
  const common = ['--log-level', opts.logLevel ?? 'error']
  const coordinatorArgs = [join(services, 'coordinator/main.js'), '--port', String(port), ...common]
  if (opts.topologyFile !== undefined) coordinatorArgs.push('--topology', opts.topologyFile)
  else coordinatorArgs.push('--gpus', String(gpus), '--vram', opts.vram ?? '64MiB')
  if (opts.invalidateDeadlineMs !== undefined) coordinatorArgs.push('--invalidate-deadline-ms', String(opts.invalidateDeadlineMs))
  const sup = new Supervisor()
  let fatal: string | null = null
  sup.onFatal = (name, code) => { fatal = `${name} exited with ${code ?? '?'}` }
  sup.start({ name: 'coordinator', args: coordinatorArgs, restart: false })
  for (let g = 0; g < gpus; g++) {
    sup.start({
      name: `gpu${g}`,
      restart: opts.restart ?? true,
      args: [join(services, 'gpu/main.js'), '--gpu', String(g), '--vram', opts.vram ?? '64MiB', '--coordinator-port', String(port), ...common]
    })
  }
  const ready = async (timeoutMs = opts.readyTimeoutMs ?? 20_000): Promise<void> => {
    await waitReady(url, timeoutMs, () => fatal)
  }
  const cluster: SpawnedCluster = {
    url,
    port,
    gpuPid: (g) => sup.pidOf(`gpu${g}`),
    coordinatorPid: () => sup.pidOf('coordinator'),
    signalGpu: (g, signal) => {
      const pid = sup.pidOf(`gpu${g}`)
      if (pid !== undefined) process.kill(pid, signal)
    },
    waitReady: ready,
    stop: async () => { await sup.stop(3000, 'coordinator') }
  }
  try {
    await ready()
  } catch (err) {
    await cluster.stop()
    throw err
  }
  return cluster
}

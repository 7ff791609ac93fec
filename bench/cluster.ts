/**
 * The emulator as separate processes for the end-to-end goals: a coordinator
 * and one process per GPU (from dist/services), on a block of free loopback
 * ports (coordinator P, GPU i on P + 1 + i), ready once /readyz answers 200.
 * stop() terminates every one of them; a failed start stops what it began.
 */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { freePortBlock, waitReady } from '../services/cluster/free-ports.js'
import { spawnNode, stopChild, type Child } from './processes.js'

const here = dirname(fileURLToPath(import.meta.url))
const services = join(here, '../services')

export interface ClusterOptions {
  gpus: number
  vram: string
  readyTimeoutMs?: number
  /** Write a V8 CPU profile of each process into this directory (on a clean exit). */
  profileDir?: string | null
}

export interface SpawnedCluster {
  url: string
  port: number
  children: Child[]
  stop: () => Promise<void>
}

async function startOnce (opts: ClusterOptions): Promise<SpawnedCluster> {
  const port = await freePortBlock(opts.gpus + 1)
  const url = `http://127.0.0.1:${port}`
  const common = ['--log-level', 'warn', '--host', '127.0.0.1']
  const children: Child[] = []
  const execArgv = opts.profileDir != null ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : []
  const stop = async (): Promise<void> => {
    // The coordinator first (as the launcher does), then the GPUs.
    for (const c of children) await stopChild(c)
  }
  try {
    children.push(spawnNode('coordinator', join(services, 'coordinator/main.js'),
      ['--port', String(port), '--gpus', String(opts.gpus), '--vram', opts.vram, ...common], execArgv))
    for (let g = 0; g < opts.gpus; g++) {
      children.push(spawnNode(`gpu${g}`, join(services, 'gpu/main.js'),
        ['--gpu', String(g), '--vram', opts.vram, '--coordinator-port', String(port), ...common], execArgv))
    }
    let dead: string | null = null
    for (const c of children) void c.exited.then((code) => { dead ??= `${c.name} exited (${code})` })
    await waitReady(url, opts.readyTimeoutMs ?? 20_000, () => dead)
    return { url, port, children, stop }
  } catch (err) {
    const tails = children.map((c) => `--- ${c.name}:\n${c.output().trim()}`).join('\n')
    await stop()
    throw new Error(`${(err as Error).message}\n${tails}`)
  }
}

/** Starts the cluster, retrying on a fresh port block if a port was taken meanwhile. */
export async function startCluster (opts: ClusterOptions): Promise<SpawnedCluster> {
  let last: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts)
    } catch (err) {
      last = err
    }
  }
  throw last
}

/**
 * The emulator as separate processes for the end-to-end goals: a coordinator
 * and one process per GPU (from dist/services), on a block of free loopback
 * ports (coordinator P, GPU i on P + 1 + i), ready once /readyz answers 200.
 * stop() terminates every one of them; a failed start stops what it began.
 */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
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

async function listenOn (port: number): Promise<number | null> {
  return await new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => { resolve(null) })
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as AddressInfo).port
      s.close(() => { resolve(got) })
    })
  })
}

/** A port P from the OS such that P + 1 ... P + extra are free too. */
async function freePortBlock (extra: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = await listenOn(0)
    if (base === null || base + extra > 65535) continue
    let ok = true
    for (let i = 1; i <= extra && ok; i++) ok = (await listenOn(base + i)) !== null
    if (ok) return base
  }
  throw new Error(`no block of ${extra + 1} free loopback ports`)
}

async function waitReady (url: string, children: Child[], timeoutMs: number): Promise<void> {
  const t0 = Date.now()
  let dead: string | null = null
  for (const c of children) void c.exited.then((code) => { dead ??= `${c.name} exited (${code})` })
  for (;;) {
    if (dead !== null) throw new Error(dead)
    try {
      if ((await fetch(`${url}/readyz`)).ok) return
    } catch {}
    if (Date.now() - t0 > timeoutMs) throw new Error(`emulator at ${url} not ready after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function startOnce (opts: ClusterOptions): Promise<SpawnedCluster> {
  const port = await freePortBlock(opts.gpus)
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
    await waitReady(url, children, opts.readyTimeoutMs ?? 20_000)
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

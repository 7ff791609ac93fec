/**
 * Bench settings: the flags (--quick, --only a,b, --trials N, --out FILE,
 * --profile DIR)
 * and the sizes each mode uses. Full sizes are chosen so that `npm run bench`
 * takes a few minutes on a 2-core machine; --quick shrinks everything so the
 * whole run takes seconds (a smoke test, its figures are not meaningful).
 */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

export const KiB = 1024
export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** Everything --only accepts. Goals pull in the baselines they are ratios against. */
export const SELECTABLE = ['rtt', 'stream', 'memcpy', 'g1a', 'g1b', 'g3', 'g4b', 'g5'] as const
export type Selectable = typeof SELECTABLE[number]

export interface BenchConfig {
  quick: boolean
  trials: number
  only: Set<Selectable>
  out: string
  rttRoundTrips: number
  /** Socket stream: bytes per trial by chunk size. */
  streamBytes: Map<number, number>
  memcpyPoolBytes: number
  memcpyBytes: Map<number, number>
  g1Faults: number
  g1Warmup: number
  g4bFaults: number
  g4bConcurrency: number
  /** G3: ranges per trial by range size. */
  g3Ranges: Map<number, number>
  g5Pages: number
  /** The emulator processes' VRAM per GPU. */
  vram: string
  /** --profile DIR: the coordinator and GPU processes write V8 CPU profiles there. */
  profileDir: string | null
}

const here = dirname(fileURLToPath(import.meta.url))

export const USAGE = `usage: node dist/bench/main.js [--quick] [--only ${SELECTABLE.join(',')}] [--trials N] [--out FILE] [--profile DIR]`
const CHUNKS = [4 * KiB, 64 * KiB, 2 * MiB]

export function parseArgs (argv: readonly string[]): BenchConfig {
  let quick = false
  let trials: number | undefined
  let only: Set<Selectable> | undefined
  let out = join(here, '../../bench-results/latest.json')
  let profileDir: string | null = null
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new Error(`${flag} needs a value`)
      return v
    }
    if (flag === '--quick') quick = true
    else if (flag === '--trials') trials = Number(value())
    else if (flag === '--out') out = value()
    else if (flag === '--profile') profileDir = value()
    else if (flag === '--only') {
      only = new Set()
      for (const x of value().split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')) {
        if (!(SELECTABLE as readonly string[]).includes(x)) throw new Error(`--only: unknown "${x}" (choose from ${SELECTABLE.join(', ')})`)
        only.add(x as Selectable)
      }
    } else {
      throw new Error(`unknown flag ${a} (try --help)`)
    }
  }
  if (trials !== undefined && (!Number.isSafeInteger(trials) || trials < 1)) throw new Error('--trials must be a positive integer')
  const selected = only ?? new Set(SELECTABLE)
  if (quick) {
    return {
      quick,
      trials: trials ?? 2,
      only: selected,
      out,
      rttRoundTrips: 200,
      streamBytes: new Map(CHUNKS.map((c) => [c, 8 * MiB])),
      memcpyPoolBytes: 64 * MiB,
      memcpyBytes: new Map(CHUNKS.map((c) => [c, 64 * MiB])),
      g1Faults: 50,
      g1Warmup: 20,
      g4bFaults: 100,
      g4bConcurrency: 16,
      g3Ranges: new Map([[2 * MiB, 4], [64 * KiB, 32]]),
      g5Pages: 16 * 1024,
      vram: '64MiB',
      profileDir
    }
  }
  return {
    quick,
    trials: trials ?? 7,
    only: selected,
    out,
    rttRoundTrips: 2000,
    streamBytes: new Map([[4 * KiB, 64 * MiB], [64 * KiB, 256 * MiB], [2 * MiB, 512 * MiB]]),
    memcpyPoolBytes: 512 * MiB,
    memcpyBytes: new Map(CHUNKS.map((c) => [c, 512 * MiB])),
    g1Faults: 500,
    g1Warmup: 200,
    g4bFaults: 2000,
    g4bConcurrency: 16,
    g3Ranges: new Map([[2 * MiB, 64], [64 * KiB, 1024]]),
    g5Pages: 1024 * 1024,
    vram: '256MiB',
    profileDir
  }
}

/** The settings as plain JSON, for the report. */
export function configSummary (cfg: BenchConfig): Record<string, unknown> {
  const obj = (m: Map<number, number>): Record<string, number> => Object.fromEntries([...m].map(([k, v]) => [String(k), v]))
  return {
    only: [...cfg.only],
    rttRoundTrips: cfg.rttRoundTrips,
    streamBytesByChunk: obj(cfg.streamBytes),
    memcpyPoolBytes: cfg.memcpyPoolBytes,
    memcpyBytesByChunk: obj(cfg.memcpyBytes),
    g1FaultsPerTrial: cfg.g1Faults,
    g1Warmup: cfg.g1Warmup,
    g4bFaultsPerTrial: cfg.g4bFaults,
    g4bConcurrency: cfg.g4bConcurrency,
    g3RangesBySize: obj(cfg.g3Ranges),
    g5Pages: cfg.g5Pages,
    vram: cfg.vram
  }
}

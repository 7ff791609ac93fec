/**
 * G3: local migration between system memory and VRAM inside one process
 * (InProcessCluster with immediate delivery and no header serialisation: no
 * sockets, page data passed by reference): many ranges of one size, each its own VMA, CPU-written first,
 * are prefetched to the device one after another, then back to system
 * memory. Bytes moved per second each way and combined (both ways' bytes
 * over both ways' time) ÷ Buffer.copy throughput at the same chunk size,
 * measured in this process in the same trial, just before. Goal ≥ 0.6 at
 * 2 MiB and ≥ 0.3 at 64 KiB (stretch 0.8 / 0.5). Every prefetch must report
 * its whole range migrated, and after the last trial the bytes are compared
 * with what was written.
 */
import { InProcessCluster } from '../../services/cluster/in-process.js'
import { CoordinatorApi } from '../../services/coordinator/api.js'
import { defaultTopology } from '../../services/coordinator/topology/topology.js'
import type { MemcpyProbe } from '../baselines/memcpy.js'
import { type BenchConfig, KiB, MiB } from '../config.js'
import { goalFigure, type GoalFigure } from '../figures.js'
import { formatBytes } from '../format.js'

/** Ranges start here, each size in its own window, one range per 2 × size. */
const BASE = 0x2000_0000_0000
const WINDOW = 0x10_0000_0000

interface RangeSet { size: number, addrs: number[] }
interface G3Trial { toDevice: number, toSystem: number, combined: number }

function pattern (addr: number, size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(((addr + i) / 4) >>> 0, i)
  return b
}

export class G3LocalMigration {
  readonly trials = new Map<number, G3Trial[]>()

  private constructor (
    private readonly memcpy: MemcpyProbe,
    private readonly cluster: InProcessCluster,
    private readonly api: CoordinatorApi,
    private readonly vm: number,
    private readonly sets: RangeSet[]
  ) {}

  static async setup (cfg: BenchConfig, memcpy: MemcpyProbe): Promise<G3LocalMigration> {
    let vram = 0
    for (const [size, count] of cfg.g3Ranges) vram = Math.max(vram, size * count)
    vram = Math.ceil((vram + 16 * MiB) / (2 * MiB)) * 2 * MiB
    const cluster = await InProcessCluster.start({ topology: defaultTopology(1, vram), serialize: false })
    try {
      const api = new CoordinatorApi(cluster.coordinator)
      const { pid } = api.createProcess()
      const sets: RangeSet[] = []
      let w = 0
      for (const [size, count] of cfg.g3Ranges) {
        const addrs: number[] = []
        for (let i = 0; i < count; i++) {
          const addr = BASE + w * WINDOW + i * 2 * size
          await api.mmap(pid, { addr, length: size })
          await api.writeMemory(pid, addr, pattern(addr, size))
          addrs.push(addr)
        }
        sets.push({ size, addrs })
        w++
      }
      const { vm } = await api.createVm({ gpu: 0, pid })
      const g3 = new G3LocalMigration(memcpy, cluster, api, vm, sets)
      // Warm-up round (not measured): JIT, and first touch of the VRAM buffers.
      for (const s of sets) await g3.round(s)
      return g3
    } catch (err) {
      await cluster.close()
      throw err
    }
  }

  private async moveAll (s: RangeSet, location: 'device' | 'system'): Promise<number> {
    const t0 = performance.now()
    for (const addr of s.addrs) {
      const { migratedBytes } = await this.api.prefetch(this.vm, { addr, length: s.size, location })
      if (migratedBytes !== s.size) throw new Error(`G3: prefetch of ${formatBytes(s.size)} at 0x${addr.toString(16)} to ${location} moved ${migratedBytes} bytes`)
    }
    return (performance.now() - t0) / 1000
  }

  private async round (s: RangeSet): Promise<G3Trial> {
    const bytes = s.size * s.addrs.length
    const down = await this.moveAll(s, 'device')
    const up = await this.moveAll(s, 'system')
    return { toDevice: bytes / down, toSystem: bytes / up, combined: 2 * bytes / (down + up) }
  }

  /** One trial per range size (call right after a memcpy trial at each size). */
  async trial (): Promise<void> {
    for (const s of this.sets) {
      const r = await this.round(s)
      const list = this.trials.get(s.size) ?? []
      list.push(r)
      this.trials.set(s.size, list)
    }
  }

  /** The bytes survived every round trip. */
  async verify (): Promise<void> {
    const { pid } = this.api.c.vms.get(this.vm)
    for (const s of this.sets) {
      for (const addr of [s.addrs[0] as number, s.addrs[s.addrs.length - 1] as number]) {
        const got = await this.api.readMemory(pid, addr, s.size)
        if (!got.equals(pattern(addr, s.size))) throw new Error(`G3: data at 0x${addr.toString(16)} changed across migrations`)
      }
    }
  }

  figures (): GoalFigure[] {
    const out: GoalFigure[] = []
    for (const s of this.sets) {
      const t = this.trials.get(s.size) ?? []
      const copy = this.memcpy.trials.get(s.size) ?? []
      const target = s.size >= 2 * MiB ? { op: '>=' as const, goal: 0.6, stretch: 0.8 } : { op: '>=' as const, goal: 0.3, stretch: 0.5 }
      const size = s.size >= MiB ? `${s.size / MiB} MiB` : `${s.size / KiB} KiB`
      const note = `${s.addrs.length} ranges of ${size} per trial, one prefetch each, in one process`
      out.push(goalFigure({ id: `G3-${size.replace(' ', '')}`, label: `local migration system ↔ VRAM, ${size} ranges, combined`, unit: 'B/s', emulator: t.map((x) => x.combined), baselineLabel: `memcpy ${size}`, baseline: copy, target, note }))
      out.push(goalFigure({ id: `G3-${size.replace(' ', '')}-to-vram`, label: `  system → VRAM (${size})`, unit: 'B/s', emulator: t.map((x) => x.toDevice), baselineLabel: `memcpy ${size}`, baseline: copy, target }))
      out.push(goalFigure({ id: `G3-${size.replace(' ', '')}-to-system`, label: `  VRAM → system (${size})`, unit: 'B/s', emulator: t.map((x) => x.toSystem), baselineLabel: `memcpy ${size}`, baseline: copy, target }))
    }
    return out
  }

  async close (): Promise<void> {
    await this.cluster.close()
  }
}

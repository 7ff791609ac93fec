/**
 * G1a / G1b: the service time of one GPU fault at a time (concurrency 1),
 * measured inside the GPU process (fault → hmm_range_fault → get_pages →
 * bind), over separate 4 KiB VMAs that the CPU wrote first.
 *   G1a: preferred location system, so the page is mapped where it is;
 *        p50 ÷ RTT p50 (goal ≤ 2, stretch ≤ 1.5) and p99 ÷ RTT p99 (≤ 3).
 *   G1b: the default preferred location (device): each fault migrates its
 *        4 KiB page to VRAM; p50 ÷ RTT p50 (goal ≤ 3, stretch ≤ 2).
 * Each trial runs right after an RTT trial and uses pages never faulted on.
 */
import type { BenchConfig } from '../config.js'
import type { WsRttProbe } from '../baselines/ws-rtt.js'
import { goalFigure, type GoalFigure } from '../figures.js'
import type { Rest } from '../rest-client.js'
import { percentiles, type Percentiles } from '../stats.js'
import { PagePool } from './fault-pages.js'

export class G1FaultLatency {
  readonly system: Percentiles[] = []
  readonly device: Percentiles[] = []

  private constructor (private readonly cfg: BenchConfig, private readonly rtt: WsRttProbe, private readonly sysPool: PagePool | null, private readonly devPool: PagePool | null) {}

  static async setup (cfg: BenchConfig, rest: Rest, rtt: WsRttProbe, which: { g1a: boolean, g1b: boolean }): Promise<G1FaultLatency> {
    const count = cfg.g1Warmup + cfg.trials * cfg.g1Faults
    const sysPool = which.g1a ? await PagePool.create(rest, count, 'system') : null
    const devPool = which.g1b ? await PagePool.create(rest, count, 'device') : null
    // Warm-up: JIT and first-use allocations, not measured.
    if (sysPool !== null) await sysPool.faults(cfg.g1Warmup, 1)
    if (devPool !== null) await devPool.faults(cfg.g1Warmup, 1)
    return new G1FaultLatency(cfg, rtt, sysPool, devPool)
  }

  /** One trial of each selected variant (call right after an RTT trial). */
  async trial (): Promise<void> {
    if (this.sysPool !== null) this.system.push(percentiles((await this.sysPool.faults(this.cfg.g1Faults, 1)).latencyUs))
    if (this.devPool !== null) this.device.push(percentiles((await this.devPool.faults(this.cfg.g1Faults, 1)).latencyUs))
  }

  figures (): GoalFigure[] {
    const rtt = this.rtt.trials
    const out: GoalFigure[] = []
    const n = this.cfg.g1Faults
    if (this.sysPool !== null) {
      out.push(goalFigure({
        id: 'G1a',
        label: 'GPU fault, system-resident 4 KiB page, p50',
        unit: 'us',
        emulator: this.system.map((p) => p.p50),
        baselineLabel: 'ws RTT p50',
        baseline: rtt.map((p) => p.p50),
        target: { op: '<=', goal: 2.0, stretch: 1.5 },
        note: `${n} faults per trial, concurrency 1, write access, latency measured in the GPU process`
      }))
      out.push(goalFigure({
        id: 'G1a-p99',
        label: 'GPU fault, system-resident 4 KiB page, p99',
        unit: 'us',
        emulator: this.system.map((p) => p.p99),
        baselineLabel: 'ws RTT p99',
        baseline: rtt.map((p) => p.p99),
        target: { op: '<=', goal: 3.0, stretch: null }
      }))
    }
    if (this.devPool !== null) {
      out.push(goalFigure({
        id: 'G1b',
        label: 'GPU fault + 4 KiB migration to VRAM, p50',
        unit: 'us',
        emulator: this.device.map((p) => p.p50),
        baselineLabel: 'ws RTT p50',
        baseline: rtt.map((p) => p.p50),
        target: { op: '<=', goal: 3.0, stretch: 2.0 },
        note: `${n} faults per trial, concurrency 1, write access; p99 ${fmtList(this.device.map((p) => p.p99))} µs`
      }))
    }
    return out
  }
}

function fmtList (xs: number[]): string {
  return xs.map((x) => x.toFixed(0)).join('/')
}

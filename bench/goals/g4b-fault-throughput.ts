/**
 * G4b: GPU faults per second with many in flight: a batch of faults on
 * distinct, separate, system-resident 4 KiB pages (preferred location
 * system, so nothing migrates) serviced by the GPU process with
 * `concurrency` (≥ 16) in flight; faults ÷ the batch's elapsed time as the
 * GPU process measured it. The baseline is 1 ÷ RTT p50 (the rate of one
 * round trip at a time); goal ≥ 2, stretch ≥ 4.
 */
import type { BenchConfig } from '../config.js'
import type { WsRttProbe } from '../baselines/ws-rtt.js'
import { goalFigure, type GoalFigure } from '../figures.js'
import type { Rest } from '../rest-client.js'
import { median } from '../stats.js'
import { PagePool } from './fault-pages.js'

export class G4bFaultThroughput {
  /** Faults per second of each trial. */
  readonly rates: number[] = []
  /** The same, timed by the bench around the REST call (includes HTTP and the forward to the GPU). */
  readonly clientRates: number[] = []

  private constructor (private readonly cfg: BenchConfig, private readonly rtt: WsRttProbe, private readonly pool: PagePool) {}

  static async setup (cfg: BenchConfig, rest: Rest, rtt: WsRttProbe): Promise<G4bFaultThroughput> {
    const warm = Math.min(cfg.g4bFaults, 500)
    const pool = await PagePool.create(rest, warm + cfg.trials * cfg.g4bFaults, 'system')
    await pool.faults(warm, cfg.g4bConcurrency)
    return new G4bFaultThroughput(cfg, rtt, pool)
  }

  async trial (): Promise<void> {
    const s = await this.pool.faults(this.cfg.g4bFaults, this.cfg.g4bConcurrency)
    this.rates.push(this.cfg.g4bFaults / (s.elapsedUs / 1e6))
    this.clientRates.push(this.cfg.g4bFaults / (s.clientUs / 1e6))
  }

  figures (): GoalFigure[] {
    return [goalFigure({
      id: 'G4b',
      label: `GPU faults/s, ${this.cfg.g4bConcurrency} in flight, system-resident 4 KiB pages`,
      unit: 'faults/s',
      emulator: this.rates,
      baselineLabel: '1 / ws RTT p50',
      baseline: this.rtt.trials.map((p) => 1e6 / p.p50),
      target: { op: '>=', goal: 2.0, stretch: 4.0 },
      note: `${this.cfg.g4bFaults} faults per trial; timed by the bench around the REST call: median ${median(this.clientRates).toFixed(0)} faults/s`
    })]
  }
}

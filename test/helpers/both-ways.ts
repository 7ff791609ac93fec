/**
 * Runs a scenario twice: in one process over the in-memory transport, and
 * across real processes over WebSocket and HTTP (from dist/, built by
 * `npm test`'s pretest). The scenario only sees a MachineApi.
 */
import type { Test } from 'tap'
import { machine } from './cluster.js'
import { RestClient, promised, type MachineApi } from './rest-client.js'
import { spawnCluster } from '../../services/cluster/spawned.js'

export interface Setup { gpus?: number, vram?: number }

export type Scenario = (t: Test, api: MachineApi) => Promise<void>

export function bothWays (t: Test, name: string, setup: Setup, scenario: Scenario): void {
  t.test(`${name} (one process)`, async (t) => {
    const m = await machine({ gpus: setup.gpus ?? 1, vram: setup.vram ?? 32 * 1024 * 1024, seed: 7 })
    t.teardown(m.close)
    await scenario(t, promised(m.api))
  })
  t.test(`${name} (processes)`, async (t) => {
    const c = await spawnCluster({ gpus: setup.gpus ?? 1, vram: `${(setup.vram ?? 32 * 1024 * 1024) / (1024 * 1024)}MiB` })
    t.teardown(c.stop)
    await scenario(t, new RestClient(c.url))
  })
}

/**
 * Per-GPU activity counters (GET /v1/gpus/:gpu, /metrics). Byte counts for
 * migratedTo* and p2pBytes, operation counts under migrations. A job (exec,
 * fault injection) can carry its own JobStats so its reply shows what it
 * caused.
 */
import type { GpuCounters } from '../../shared/schemas/vm.js'

export function newCounters (): GpuCounters {
  return {
    faults: 0,
    invalidations: 0,
    migratedToDevice: 0,
    migratedToSystem: 0,
    p2pBytes: 0,
    evictions: 0,
    migrations: { systemToDevice: 0, deviceToSystem: 0, peerDirect: 0, peerViaSystem: 0 }
  }
}

export interface JobStats {
  faults: number
  migratedToDevice: number
  migratedToSystem: number
  p2pBytes: number
}

export function newJobStats (): JobStats {
  return { faults: 0, migratedToDevice: 0, migratedToSystem: 0, p2pBytes: 0 }
}

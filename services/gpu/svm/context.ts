/** What the SVM code of a GPU needs from its device (kept narrow for tests). */
import type { Log } from '../../../shared/util/log.js'
import type { GpuCounters } from '../../../shared/schemas/vm.js'
import type { CoordinatorPort } from '../coordinator-port.js'
import type { DrmPagemap } from '../pagemap/drm-pagemap.js'
import type { SelfInvalidation } from './self-invalidation.js'

export interface SvmContext {
  readonly gpu: number
  readonly port: CoordinatorPort
  readonly pagemap: DrmPagemap
  readonly counters: GpuCounters
  readonly log: Log
  /** Runs this GPU's own MIGRATE callback for a window of a process, before asking for a migration. */
  selfInvalidate: (pid: number, start: number, end: number) => SelfInvalidation
}

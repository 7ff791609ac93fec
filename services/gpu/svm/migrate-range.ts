/**
 * Migration of one range to this GPU's VRAM (xe_svm_alloc_vram ->
 * drm_pagemap_populate_mm). The collection (migrate_vma_setup) may already
 * have been done, fused with find_or_insert; otherwise it is asked for now,
 * with the hmm_range_fault of the following get_pages fused into the same
 * call for the outcomes where the range stays where it is, and into the
 * commit when it moves.
 *
 * Before asking, this GPU runs its own invalidation callback for the range
 * (self-invalidation.ts).
 */
import { SvmError, svmError } from '../../../shared/errors.js'
import type { RangePrepareParams, RangePrepareResult } from '../../../shared/protocol/messages/coordinator.js'
import type { Payload } from '../../../shared/transport/payload.js'
import type { JobStats } from '../counters.js'
import type { Collected } from '../pagemap/drm-pagemap.js'
import type { SvmContext } from './context.js'
import type { StepOutcome } from '../coordinator-port.js'
import type { GpuVm } from './gpu-vm.js'
import type { SvmRange } from './range.js'

export interface Prefetch {
  migrate: RangePrepareResult['migrate']
  data: Payload | null
  pages: StepOutcome | null
}

export const NO_PREFETCH: Prefetch = { migrate: null, data: null, pages: null }

export interface MigrateResult {
  placed: number
  /** get_pages' hmm result, fused into the call that ended the migration. */
  pages: StepOutcome | null
  error: SvmError | null
}

export async function migrateRange (
  ctx: SvmContext,
  vm: GpuVm,
  r: SvmRange,
  timesliceMs: number,
  pre: Prefetch,
  o: { write: boolean, devmemOnly: boolean },
  job: JobStats
): Promise<MigrateResult> {
  const n = r.notifier
  let pages: StepOutcome | null = pre.pages
  let session = -1
  const commit = async (dst: number): Promise<{ failed: readonly number[] }> => {
    const c = await ctx.port.commitToDevice({
      session, dst, fault: { pid: vm.pid, notifier: n.id, start: r.start, end: r.end, write: o.write }
    })
    pages = c.pages
    return c
  }
  const take = (m: RangePrepareResult['migrate'], data: Payload | null): Collected | 'equal' => {
    if (m === null) throw svmError('EBUSY', 'range is not migratable')
    if (m.outcome === 'equal') return 'equal'
    if (m.outcome === 'failed') throw new SvmError(m.error.code as SvmError['code'], m.error.message)
    session = m.collected.session
    return { session, copy: m.collected.copy, data }
  }
  try {
    let source: { collected: Collected } | { collect: () => Promise<Collected | 'equal'> }
    if (pre.migrate !== null) {
      const c = take(pre.migrate, pre.data)
      if (c === 'equal') return { placed: 0, pages, error: null }
      source = { collected: c }
    } else {
      source = {
        collect: async () => {
          const params: RangePrepareParams = {
            pid: vm.pid,
            notifier: { id: n.id, start: n.start, end: n.end },
            locate: null,
            range: { start: r.start, end: r.end },
            migrate: { selfNotifiers: [n.id], faultOn: o.devmemOnly ? ['equal'] : ['equal', 'failed'] },
            fault: { write: o.write }
          }
          const self = ctx.selfInvalidate(vm.pid, r.start, r.end)
          params.migrate = { selfNotifiers: self.ids, faultOn: o.devmemOnly ? ['equal'] : ['equal', 'failed'] }
          let reply: { result: RangePrepareResult, data: Payload | null }
          try {
            reply = await ctx.port.rangePrepare(params)
          } catch (err) {
            self.fail()
            throw err
          }
          self.settle(reply.result.selfSeqs)
          const { result, data } = reply
          pages = result.pages
          return take(result.migrate, data)
        }
      }
    }
    const out = await ctx.pagemap.populate(r.npages, vm.pid, source, commit, timesliceMs, job)
    return { placed: out.placed, pages, error: null }
  } catch (err) {
    if (!(err instanceof SvmError)) throw err
    return { placed: 0, pages, error: err }
  }
}

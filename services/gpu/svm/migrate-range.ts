/**
 * Migration of one range to this GPU's VRAM (xe_svm_alloc_vram ->
 * drm_pagemap_populate_mm), in one of two shapes:
 *
 *   - small ranges (up to FUSED_MAX_PAGES): VRAM is set aside first and sent
 *     with the request; the coordinator collects and commits to it in one
 *     exchange, and the bytes are written in synchronously when the reply
 *     arrives (drm-pagemap.ts adopt), before any later message;
 *   - larger ranges, or no free block to set aside: collect (the sources'
 *     bytes come back), allocate (evicting under pressure), copy, commit.
 *     One copy of the data, which is what throughput needs.
 *
 * Either way the hmm_range_fault of the following get_pages is fused into
 * the last exchange, and this GPU runs its own MIGRATE invalidation callback
 * before asking (self-invalidation.ts). The collection may also already have
 * happened, fused with find_or_insert (the Prefetch).
 */
import { SvmError, svmError } from '../../../shared/errors.js'
import type { RangePrepareParams, RangePrepareResult } from '../../../shared/protocol/messages/coordinator.js'
import type { Payload } from '../../../shared/transport/payload.js'
import type { JobStats } from '../counters.js'
import type { StepOutcome } from '../coordinator-port.js'
import type { Collected, Reservation } from '../pagemap/drm-pagemap.js'
import type { SvmContext } from './context.js'
import type { GpuVm } from './gpu-vm.js'
import type { SvmRange } from './range.js'

/** Ranges up to 64 KiB migrate in one exchange. */
export const FUSED_MAX_PAGES = 16

export interface Prefetch {
  migrate: RangePrepareResult['migrate']
  data: Payload | null
  pages: StepOutcome | null
  /** Pages placed by a fused commit (already written into VRAM). */
  placed: number
  /** The reply's settled seqs of self-invalidated notifiers. */
  selfSeqs: readonly number[]
}

export const NO_PREFETCH: Prefetch = { migrate: null, data: null, pages: null, placed: 0, selfSeqs: [] }

/**
 * Sends a range_prepare that may commit to `reserve`; the reservation is
 * adopted (or given back) synchronously when the reply arrives.
 */
export async function prepareWithReserve (
  ctx: SvmContext,
  vm: GpuVm,
  params: RangePrepareParams,
  reserve: Reservation | null,
  timesliceMs: number,
  job: JobStats,
  onResult?: (r: RangePrepareResult) => void
): Promise<Prefetch> {
  let placed = 0
  let settled = false
  const settle = (result: RangePrepareResult | null, data: Payload | null): void => {
    if (settled || reserve === null) return
    settled = true
    const m = result?.migrate
    if (m?.outcome === 'committed') {
      placed = ctx.pagemap.adopt(reserve, vm.pid, m.committed.copy, data, m.committed.failed, timesliceMs, job)
    } else {
      ctx.pagemap.unreserve(reserve)
    }
  }
  try {
    const { result, data } = await ctx.port.rangePrepare(params, (r) => {
      onResult?.(r.result)
      settle(r.result, r.data)
    })
    return { migrate: result.migrate, data, pages: result.pages, placed, selfSeqs: result.selfSeqs }
  } finally {
    settle(null, null)
  }
}

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
  const take = (m: RangePrepareResult['migrate'], data: Payload | null): Collected | 'equal' | 'committed' => {
    if (m === null) throw svmError('EBUSY', 'range is not migratable')
    if (m.outcome === 'equal' || m.outcome === 'committed') return m.outcome
    if (m.outcome === 'failed') throw new SvmError(m.error.code as SvmError['code'], m.error.message)
    session = m.collected.session
    return { session, copy: m.collected.copy, data }
  }
  try {
    let fetched = pre
    if (fetched.migrate === null) {
      const reserve = r.npages <= FUSED_MAX_PAGES ? ctx.pagemap.reserve(r.npages) : null
      const self = ctx.selfInvalidate(vm.pid, r.start, r.end)
      const params: RangePrepareParams = {
        pid: vm.pid,
        notifier: { id: n.id, start: n.start, end: n.end },
        locate: null,
        range: { start: r.start, end: r.end },
        migrate: { selfNotifiers: self.ids, reserve, faultOn: o.devmemOnly ? ['equal'] : ['equal', 'failed'] },
        fault: { write: o.write }
      }
      fetched = await self.around(async () => await prepareWithReserve(ctx, vm, params, reserve, timesliceMs, job))
    }
    const c = take(fetched.migrate, fetched.data)
    pages = fetched.pages
    if (c === 'equal') return { placed: 0, pages, error: null }
    if (c === 'committed') return { placed: fetched.placed, pages, error: null }
    const out = await ctx.pagemap.populate(r.npages, vm.pid, { collected: c }, commit, timesliceMs, job)
    return { placed: out.placed, pages, error: null }
  } catch (err) {
    if (!(err instanceof SvmError)) throw err
    return { placed: 0, pages, error: err }
  }
}

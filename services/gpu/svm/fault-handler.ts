/**
 * The GPU page-fault handler (xe_svm_handle_pagefault), step by step:
 *
 *   0. atomic faults need device memory (need_vram) unless the atomic mode
 *      is "cpu", which refuses them (EACCES); such faults are devmem-only,
 *      get 3 tries and a 5 ms migration timeslice that doubles per retry;
 *   1. run the garbage collector, so unmapped ranges are gone;
 *   2. find or insert the range (chunk chosen on the CPU side, fused with
 *      the next step so a fault costs about one round trip);
 *   3. devmem-only on memory that cannot migrate -> EACCES; a range already
 *      bound (in device memory if required) -> done;
 *   4. migrate to the preferred pagemap if the range needs it; a failure
 *      falls back to mapping the pages where they are unless devmem-only;
 *   5. get_pages (EOPNOTSUPP evicts the range first; it, EFAULT and EPERM
 *      retry while tries remain);
 *   6. bind, only if the pages are still valid under the notifier lock,
 *      else retry.
 */
import { SvmError, hasCode, svmError } from '../../../shared/errors.js'
import { USER_SPACE_END, SZ_64K, alignDown, alignUp } from '../../../shared/units.js'
import { CHUNK_SIZES } from '../../../shared/svm/chunk.js'
import type { Access } from '../../../shared/schemas/common.js'
import type { JobStats } from '../counters.js'
import type { Attrs } from './attributes.js'
import type { SvmContext } from './context.js'
import { getPages, rangeEvict } from './get-pages.js'
import type { StepOutcome } from '../coordinator-port.js'
import type { GpuVm } from './gpu-vm.js'
import { FUSED_MAX_PAGES, migrateRange, NO_PREFETCH, prepareWithReserve, type Prefetch } from './migrate-range.js'
import type { RangePrepareParams } from '../../../shared/protocol/messages/coordinator.js'
import { SelfInvalidation } from './self-invalidation.js'
import { SvmRange } from './range.js'

export const ATOMIC_SVM_TIMESLICE_MS = 5
export const CHECK_PAGES_THRESHOLD = SZ_64K
/** Bound on retries of a fault that is not devmem-only (xe would loop). */
const MAX_ROUNDS = 8

export interface FaultOutcome {
  range: SvmRange
  location: string
  migrated: boolean
}

/** xe_vma_resolve_pagemap: the GPU whose VRAM is preferred, or null for system memory. */
export function preferredPagemap (attrs: Attrs, self: number): number | null {
  const p = attrs.preferredLocation
  if (p === 'system') return null
  if (p === 'device') return self
  return p.gpu
}

/** xe_svm_range_is_valid */
function rangeValid (ctx: SvmContext, r: SvmRange, devmemOnly: boolean): boolean {
  return r.bound && r.pagesValid && (!devmemOnly || (r.hasDevmemPages && r.dpagemap === ctx.gpu))
}

/** xe_svm_range_needs_migrate_to_vram (to this GPU: peers' VRAM is not a migration target here). */
function needsMigrate (ctx: SvmContext, r: SvmRange, dpagemap: number | null): boolean {
  if (!r.migrateDevmem || dpagemap !== ctx.gpu) return false
  return !(r.hasDevmemPages && r.dpagemap === dpagemap)
}

/** find_or_insert for an address with no range, fused with the step that follows. */
async function insertRange (
  ctx: SvmContext,
  vm: GpuVm,
  addr: number,
  o: { readOnly: boolean, wantMigrate: boolean, devmemOnly: boolean, timesliceMs: number },
  job: JobStats
): Promise<{ range: SvmRange, pre: Prefetch }> {
  const n = vm.svm.notifierFor(addr)
  vm.svm.use(n)
  try {
    const overlaps = CHUNK_SIZES.map((size) => n.overlapping(alignDown(addr, size), alignUp(addr + 1, size)).length > 0)
    const gva = vm.attrs.spanAt(addr, USER_SPACE_END)
    const params = {
      pid: vm.pid,
      notifier: { id: n.id, start: n.start, end: n.end },
      locate: {
        addr, gvaStart: gva.start, gvaEnd: gva.end, overlaps, readOnly: o.readOnly,
        checkPagesThreshold: CHECK_PAGES_THRESHOLD, devmemPossible: true
      },
      range: null,
      migrate: null as RangePrepareParams['migrate'],
      fault: { write: !o.readOnly }
    }
    let pre: Prefetch & { start: number, end: number, migrateDevmem: boolean }
    if (o.wantMigrate) {
      // A small chunk can be committed straight into VRAM set aside now.
      const reserve = ctx.pagemap.reserve(FUSED_MAX_PAGES)
      params.migrate = { selfNotifiers: [n.id], reserve, faultOn: o.devmemOnly ? ['equal'] : ['equal', 'failed'] }
      let geometry = { start: 0, end: 0, migrateDevmem: false }
      const f = await SelfInvalidation.notifier(n).around(async () => await prepareWithReserve(ctx, vm, params, reserve, o.timesliceMs, job, (r) => {
        geometry = { start: r.start, end: r.end, migrateDevmem: r.migrateDevmem }
      }))
      pre = { ...f, ...geometry }
    } else {
      const { result, data } = await ctx.port.rangePrepare(params)
      pre = { migrate: result.migrate, data, pages: result.pages, placed: 0, selfSeqs: [], start: result.start, end: result.end, migrateDevmem: result.migrateDevmem }
    }
    const range = new SvmRange(n, pre.start, pre.end, pre.migrateDevmem)
    if (!vm.svm.insert(range)) {
      // A concurrent fault inserted an overlapping range first: undo ours and use theirs.
      if (pre.migrate?.outcome === 'collected') await ctx.port.abort(pre.migrate.collected.session).catch(() => [])
      throw svmError('EAGAIN', 'range inserted concurrently')
    }
    return { range, pre }
  } finally {
    vm.svm.unuse(n)
    const dropped = vm.svm.dropIfEmpty(n)
    if (dropped !== null) ctx.port.notifierRemove(vm.pid, [dropped.id])
  }
}

function collectPending (ctx: SvmContext, pre: Prefetch): void {
  if (pre.migrate?.outcome === 'collected') {
    const session = pre.migrate.collected.session
    ctx.port.abort(session).catch(() => {})
  }
}

export interface FaultOptions {
  /**
   * Prefetch's placement instead of the preferred location: a GPU id, or null
   * for system memory (device pages of the range are evicted first).
   */
  target?: number | null
  /** Prefetch: a failed migration is reported, not worked around. */
  strict?: boolean
}

export async function handleFault (ctx: SvmContext, vm: GpuVm, addr: number, access: Access, job: JobStats, opts: FaultOptions = {}): Promise<FaultOutcome> {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr >= USER_SPACE_END) throw svmError('EINVAL', `fault address 0x${addr.toString(16)} outside the mirrored space`)
  if (vm.closed) throw svmError('ENOENT', 'VM is closed')
  ctx.counters.faults++
  job.faults++
  const readOnly = access === 'read'
  let needVram = false
  if (access === 'atomic') {
    if (vm.attrs.at(addr).atomic === 'cpu') throw svmError('EACCES', 'atomic access is CPU-only here (madvise atomic "cpu")')
    needVram = true
  }
  const devmemOnly = needVram
  let timeslice = devmemOnly ? ATOMIC_SVM_TIMESLICE_MS : 0
  let tries = devmemOnly ? 3 : 1
  let migrated = false
  let lastErr: unknown = null
  for (let round = 0; ; round++) {
    if (round >= MAX_ROUNDS) {
      // Internal retry signals are not for clients: a fault that keeps racing is EBUSY.
      if (lastErr === null || hasCode(lastErr, 'EAGAIN', 'EOPNOTSUPP')) throw svmError('EBUSY', `fault at 0x${addr.toString(16)} did not settle in ${MAX_ROUNDS} rounds`)
      throw lastErr
    }
    for (const n of vm.gc()) ctx.port.notifierRemove(vm.pid, [n.id])
    const attrs = vm.attrs.at(addr)
    const dpagemap = devmemOnly ? ctx.gpu : opts.target !== undefined ? opts.target : preferredPagemap(attrs, ctx.gpu)
    let range = vm.svm.rangeFind(addr)
    let pre: Prefetch = NO_PREFETCH
    if (range === undefined) {
      try {
        const ins = await insertRange(ctx, vm, addr, { readOnly, wantMigrate: tries > 0 && dpagemap === ctx.gpu, devmemOnly, timesliceMs: timeslice }, job)
        range = ins.range
        pre = ins.pre
      } catch (err) {
        if (hasCode(err, 'EAGAIN')) { lastErr = err; continue }
        throw err
      }
    }
    try {
      if (devmemOnly && !range.migrateDevmem) throw svmError('EACCES', 'atomic access needs device memory, and this memory cannot migrate')
      let toRam: StepOutcome | null = null
      if (opts.target === null && !(range.bound && range.pagesValid && !range.hasDevmemPages)) {
        collectPending(ctx, pre)
        pre = NO_PREFETCH
        // This GPU's own pages come back by one migrate_vma; another GPU's, if any, through get_pages' eviction.
        toRam = await ctx.pagemap.migrateWindowToRam(vm.pid, range.start, range.end, 0, ctx.pagemap.vram.pages,
          { pid: vm.pid, notifier: range.notifier.id, start: range.start, end: range.end, write: !readOnly }, job)
      }
      if (rangeValid(ctx, range, devmemOnly) && (readOnly || !range.readOnly) &&
          (opts.target === undefined || (opts.target === null ? !range.hasDevmemPages : !needsMigrate(ctx, range, opts.target)))) {
        return outcome(vm, range, migrated)
      }
      let pages: StepOutcome | null = toRam ?? pre.pages
      if (--tries >= 0 && needsMigrate(ctx, range, dpagemap)) {
        const m = await migrateRange(ctx, vm, range, timeslice, pre, { write: !readOnly, devmemOnly }, job)
        pre = NO_PREFETCH
        timeslice <<= 1
        if (m.error !== null) {
          lastErr = m.error
          if (opts.strict === true) throw m.error
          if (devmemOnly) {
            if (tries > 0) continue
            throw m.error
          }
          // Not devmem-only: map the pages where they are (the kernel's retry, minus the trip round).
        }
        migrated ||= m.placed > 0
        pages = m.pages
      } else {
        collectPending(ctx, pre)
        pre = NO_PREFETCH
      }
      try {
        await getPages(ctx, vm, range, { readOnly, devmemOnly }, pages)
      } catch (err) {
        if (hasCode(err, 'EOPNOTSUPP')) await rangeEvict(ctx, vm, range).catch((e: unknown) => { ctx.log.debug({ err: e }, 'range_evict failed') })
        if (hasCode(err, 'EOPNOTSUPP', 'EFAULT', 'EPERM')) {
          timeslice <<= 1
          lastErr = err
          if (tries > 0 || !devmemOnly) continue
        }
        throw err
      }
      if (!vm.bind(range, attrs)) {
        timeslice <<= 1
        lastErr = svmError('EAGAIN', 'pages invalidated before bind')
        continue
      }
      return outcome(vm, range, migrated)
    } finally {
      collectPending(ctx, pre)
    }
  }
}

function outcome (vm: GpuVm, range: SvmRange, migrated: boolean): FaultOutcome {
  return { range, location: vm.locationOf(range), migrated }
}

export function isRetryable (err: unknown): boolean {
  return err instanceof SvmError && (err.code === 'EAGAIN' || err.code === 'EBUSY')
}

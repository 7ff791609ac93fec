/**
 * Prefetch (DRM_XE_VM_BIND_OP_PREFETCH on a CPU-address-mirror VMA): walk the
 * CPU VMAs inside the window (holes are skipped; no VMA at all is ENOENT),
 * and for each range place it (this GPU's VRAM, or system memory) and bind
 * it, so the next access does not fault. Memory that cannot migrate (shared
 * mappings) is bound where it is; a failed migration is reported. The reply
 * counts bytes of the window whose residency changed: the CPU side's report
 * before, against where the bound ranges map their pages after. Populating a
 * never-touched page in system memory is not a migration and is not counted
 * (zero-filled pages placed in VRAM are, as migratedToDevice counts them).
 */
import { svmError } from '../../../shared/errors.js'
import { PAGE_SIZE, USER_SPACE_END, isPageAligned } from '../../../shared/units.js'
import { deviceGpu } from '../../../shared/svm/page-id.js'
import type { PrefetchBody } from '../../../shared/schemas/vm.js'
import type { JobStats } from '../counters.js'
import type { SvmContext } from './context.js'
import { handleFault } from './fault-handler.js'
import type { GpuVm } from './gpu-vm.js'
import { PROTO_DRIVER, PROTO_SYSTEM, dmaId, dmaProto } from './page-addr.js'
import type { SvmRange } from './range.js'

interface Run { addr: number, length: number, location: string }

/** Locations as small numbers: 0 unpopulated, 1 system, 2 + N for gpuN. */
const UNPOPULATED = 0
const SYSTEM_RAM = 1

function locationCode (location: string): number {
  if (location === 'unpopulated') return UNPOPULATED
  if (location === 'system') return SYSTEM_RAM
  return 2 + Number(location.slice(3))
}

/** Where a bound range maps one of its pages. */
function mappedCode (ctx: SvmContext, r: SvmRange, i: number): number {
  const a = (r.dma as Float64Array)[i] as number
  const proto = dmaProto(a)
  if (proto === PROTO_SYSTEM) return dmaId(a) === 0 ? UNPOPULATED : SYSTEM_RAM
  return 2 + (proto === PROTO_DRIVER ? ctx.gpu : deviceGpu(dmaId(a)))
}

/** Bytes of the window, inside the given ranges, whose location differs from `before`. */
export function changedBytes (ctx: SvmContext, before: readonly Run[], ranges: readonly SvmRange[], start: number, end: number): number {
  const codes = before.map((r) => locationCode(r.location))
  let changed = 0
  let k = 0
  for (const r of ranges) {
    if (r.dma === null) continue
    for (let a = Math.max(r.start, start); a < Math.min(r.end, end); a += PAGE_SIZE) {
      while (k < before.length && (before[k] as Run).addr + (before[k] as Run).length <= a) k++
      const run = before[k]
      const was = run !== undefined && run.addr <= a ? codes[k] as number : UNPOPULATED
      const now = mappedCode(ctx, r, (a - r.start) / PAGE_SIZE)
      if (now !== was && !(was === UNPOPULATED && now === SYSTEM_RAM)) changed += PAGE_SIZE
    }
  }
  return changed
}

export async function prefetch (ctx: SvmContext, vm: GpuVm, p: PrefetchBody, job: JobStats): Promise<{ migratedBytes: number }> {
  if (!isPageAligned(p.addr) || !isPageAligned(p.length)) throw svmError('EINVAL', 'prefetch address and length must be page aligned')
  const end = p.addr + p.length
  if (end > USER_SPACE_END) throw svmError('EINVAL', 'prefetch beyond the mirrored space (2^47)')
  const target: number | null = p.location === 'system' ? null : p.location === 'device' ? ctx.gpu : p.location.gpu
  if (target !== null && target !== ctx.gpu) {
    throw svmError('EOPNOTSUPP', `prefetch into gpu${target}'s VRAM from a VM of gpu${ctx.gpu} is not supported by this version`)
  }
  const { vmas, runs: before } = await ctx.port.layout(vm.pid, p.addr, end)
  if (vmas.length === 0) throw svmError('ENOENT', 'no CPU mapping in the prefetch window')
  const bound: SvmRange[] = []
  for (const v of vmas) {
    if (v.prot === 'none') continue
    const access = v.prot === 'rw' ? 'write' : 'read'
    let a = Math.max(v.start, p.addr)
    const stop = Math.min(v.end, end)
    while (a < stop) {
      const out = await handleFault(ctx, vm, a, access, job, { target: v.shared ? undefined : target, strict: true })
      if (bound[bound.length - 1] !== out.range) bound.push(out.range)
      a = Math.max(out.range.end, a + PAGE_SIZE)
    }
  }
  return { migratedBytes: changedBytes(ctx, before, bound, p.addr, end) }
}

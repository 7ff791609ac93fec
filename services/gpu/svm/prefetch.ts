/**
 * Prefetch (DRM_XE_VM_BIND_OP_PREFETCH on a CPU-address-mirror VMA): walk the
 * CPU VMAs inside the window (holes are skipped; no VMA at all is ENOENT),
 * and for each range place it (this GPU's VRAM, or system memory) and bind
 * it, so the next access does not fault. Memory that cannot migrate (shared
 * mappings) is bound where it is. The reply counts bytes whose residency
 * changed, from the CPU side's residency before and after.
 */
import { svmError } from '../../../shared/errors.js'
import { USER_SPACE_END, isPageAligned } from '../../../shared/units.js'
import type { PrefetchBody } from '../../../shared/schemas/vm.js'
import type { JobStats } from '../counters.js'
import type { SvmContext } from './context.js'
import { handleFault } from './fault-handler.js'
import type { GpuVm } from './gpu-vm.js'

interface Run { addr: number, length: number, location: string }

/** Bytes of [start, end) whose location differs between two residency reports. */
export function changedBytes (before: readonly Run[], after: readonly Run[]): number {
  const points = new Set<number>()
  for (const r of [...before, ...after]) { points.add(r.addr); points.add(r.addr + r.length) }
  const sorted = [...points].sort((a, b) => a - b)
  const at = (runs: readonly Run[], addr: number): string => {
    for (const r of runs) if (addr >= r.addr && addr < r.addr + r.length) return r.location
    return 'unpopulated'
  }
  let changed = 0
  for (let i = 0; i + 1 < sorted.length; i++) {
    const a = sorted[i] as number
    if (at(before, a) !== at(after, a)) changed += (sorted[i + 1] as number) - a
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
  const vmas = await ctx.port.vmas(vm.pid, p.addr, end)
  if (vmas.length === 0) throw svmError('ENOENT', 'no CPU mapping in the prefetch window')
  const before = await ctx.port.residency(vm.pid, p.addr, end)
  for (const v of vmas) {
    if (v.prot === 'none') continue
    const access = v.prot === 'rw' ? 'write' : 'read'
    let a = Math.max(v.start, p.addr)
    const stop = Math.min(v.end, end)
    while (a < stop) {
      const out = await handleFault(ctx, vm, a, access, job, { target: v.shared ? undefined : target, strict: true })
      a = Math.max(out.range.end, a + 4096)
    }
  }
  const after = await ctx.port.residency(vm.pid, p.addr, end)
  return { migratedBytes: changedBytes(before, after) }
}

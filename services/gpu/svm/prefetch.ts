/**
 * Prefetch (DRM_XE_VM_BIND_OP_PREFETCH on a CPU-address-mirror VMA): walk the
 * CPU VMAs inside the window (holes are skipped; no VMA at all is ENOENT),
 * and for each range place it (this GPU's VRAM, or system memory) and bind
 * it, so the next access does not fault. Memory that cannot migrate (shared
 * mappings) is bound where it is; a failed migration is reported.
 *
 * migratedBytes counts the bytes the prefetch moved: pages placed in VRAM
 * (zero-filled ones included, as migratedToDevice counts them) or brought
 * back to system memory, for the whole ranges it placed. Populating a
 * never-touched page in system memory is not a migration.
 */
import { svmError } from '../../../shared/errors.js'
import { PAGE_SIZE, USER_SPACE_END, isPageAligned } from '../../../shared/units.js'
import type { PrefetchBody } from '../../../shared/schemas/vm.js'
import type { JobStats } from '../counters.js'
import type { SvmContext } from './context.js'
import { handleFault } from './fault-handler.js'
import type { GpuVm } from './gpu-vm.js'

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
  const before = job.migratedToDevice + job.migratedToSystem
  for (const v of vmas) {
    if (v.prot === 'none') continue
    const access = v.prot === 'rw' ? 'write' : 'read'
    let a = Math.max(v.start, p.addr)
    const stop = Math.min(v.end, end)
    while (a < stop) {
      const out = await handleFault(ctx, vm, a, access, job, { target: v.shared ? undefined : target, strict: true })
      a = Math.max(out.range.end, a + PAGE_SIZE)
    }
  }
  return { migratedBytes: job.migratedToDevice + job.migratedToSystem - before }
}

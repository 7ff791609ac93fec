/**
 * fork(): the child gets a copy of every VMA. Private mappings are shared
 * copy-on-write: both PTEs lose write permission (after a PROTECTION
 * invalidation of the parent's notifiers, as copy_page_range does), system
 * frames and device-private pages alike, so one physical page backs both
 * until either side writes. Shared mappings share their object; the child
 * faults their pages in from it. A page locked by a migration in flight is
 * copied as a migration entry and joins that migration.
 */
import { PAGE_SIZE } from '../../../shared/units.js'
import { Mm } from './mm.js'
import { DEVICE, MIGRATION, POISON, PTE_WRITE, SYSTEM, ZERO, kindOf } from './pte.js'
import { PROT_WRITE } from './vma.js'

export async function fork (parent: Mm, childPid: number): Promise<Mm> {
  return await parent.lock.write(async () => {
    const child = new Mm(parent.ctx, childPid)
    parent.ctx.mms.set(childPid, child)
    const writable = parent.vmas.all.filter((v) => v.shm === null && (v.prot & PROT_WRITE) !== 0)
    let lo = Infinity
    let hi = -Infinity
    for (const v of writable) {
      lo = Math.min(lo, v.start)
      hi = Math.max(hi, v.end)
    }
    const inv = lo < hi ? await parent.notifiers.begin(lo, hi, 'protection', null) : null
    try {
      for (const v of parent.vmas.all) {
        v.shm?.get()
        child.vmas.insert({ ...v })
        if (v.shm !== null) continue
        parent.pt.forEachPresent(v.start / PAGE_SIZE, v.end / PAGE_SIZE, (vpn, pte, pfn) => {
          const kind = kindOf(pte)
          switch (kind) {
            case SYSTEM:
            case DEVICE: {
              const ro = pte & ~PTE_WRITE
              if (ro !== pte) parent.pt.setKind(vpn, ro)
              child.install(vpn, ro, pfn)
              break
            }
            case ZERO:
            case POISON:
              child.pt.set(vpn, pte, pfn)
              break
            case MIGRATION: {
              const s = parent.ctx.sessions.get(pfn)
              const slot = s?.slotOf(parent.pid, vpn)
              if (s !== undefined && slot !== undefined) {
                child.pt.set(vpn, pte, pfn)
                s.addMapping(childPid, vpn, slot)
              }
              break
            }
          }
        })
      }
    } finally {
      inv?.end()
    }
    return child
  })
}

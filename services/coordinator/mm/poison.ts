/**
 * A GPU declared lost takes its VRAM with it. Migrations it was running are
 * aborted (their sources go back), then every PTE still naming one of its
 * device pages becomes POISON, after a CLEAR invalidation so that no other
 * GPU keeps a peer mapping of it. Poisoned pages fail CPU and GPU access
 * with EIO (never silent zeros) until they are unmapped.
 */
import { PAGE_SIZE } from '../../../shared/units.js'
import { deviceId } from '../../../shared/svm/page-id.js'
import type { MmContext } from './mm.js'
import { abortSession } from './migrate.js'
import { POISON } from './pte.js'

export async function poisonGpu (ctx: MmContext, gpu: number): Promise<number> {
  for (const s of ctx.sessions.ofGpu(gpu)) abortSession(ctx, s)
  const rmap = ctx.phys.deviceRmap(gpu)
  const byPid = new Map<number, Array<[number, number]>>()
  for (let pfn = 0; pfn < rmap.capacity; pfn++) {
    if (rmap.count(pfn) === 0) continue
    const maps = rmap.mappings(pfn)
    for (let k = 0; k < maps.length; k += 2) {
      const pid = maps[k] as number
      let l = byPid.get(pid)
      if (l === undefined) {
        l = []
        byPid.set(pid, l)
      }
      l.push([maps[k + 1] as number, pfn])
    }
  }
  let poisoned = 0
  for (const [pid, pages] of byPid) {
    const mm = ctx.mms.get(pid)
    if (mm === undefined) continue
    pages.sort((a, b) => a[0] - b[0])
    const lo = (pages[0] as [number, number])[0]
    const hi = (pages[pages.length - 1] as [number, number])[0] + 1
    const inv = await mm.notifiers.begin(lo * PAGE_SIZE, hi * PAGE_SIZE, 'clear', null)
    try {
      for (const [vpn, pfn] of pages) {
        const id = deviceId(gpu, pfn)
        if (mm.pt.pfn(vpn) !== id) continue
        rmap.remove(pfn, pid, vpn)
        mm.pt.set(vpn, POISON, id)
        poisoned++
      }
    } finally {
      inv.end()
    }
  }
  return poisoned
}

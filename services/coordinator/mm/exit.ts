/**
 * Process exit (exit_mmap): a RELEASE invalidation over everything the GPUs
 * mirror, then every mapping is torn down, every frame freed and every device
 * page handed back to its GPU. The notifiers are dropped with the mm.
 */
import { USER_SPACE_END } from '../../../shared/units.js'
import type { Mm } from './mm.js'
import { FreedDevicePages } from './physical.js'

export async function exitMm (mm: Mm): Promise<void> {
  await mm.lock.write(async () => {
    if (mm.dead) return
    const inv = await mm.notifiers.begin(0, USER_SPACE_END, 'release', null)
    const freed = new FreedDevicePages()
    try {
      for (const v of mm.vmas.remove(0, USER_SPACE_END)) {
        mm.zapRange(v.start, v.end, freed)
        v.shm?.put()
      }
      mm.dead = true
    } finally {
      inv.end()
    }
    for (const n of [...mm.notifiers.all]) mm.notifiers.remove(n.gpu, n.id)
    mm.ctx.mms.delete(mm.pid)
    await mm.ctx.freeDevicePages(freed)
  })
}

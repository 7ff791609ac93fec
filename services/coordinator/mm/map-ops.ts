/**
 * The VMA-changing system calls: mmap, munmap, mremap, mprotect (mm/mmap.c,
 * mm/mremap.c, mm/mprotect.c). Each holds the mmap lock for writing and
 * invalidates the GPUs' notifiers over the span before it changes a PTE:
 * UNMAP for munmap, MAP_FIXED replacement and the source of a move,
 * PROTECTION for mprotect. Device pages whose last mapping goes are handed
 * back to their GPUs before the call returns (freeing is synchronous).
 */
import { svmError } from '../../../shared/errors.js'
import { PAGE_SIZE, USER_SPACE_END, isPageAligned } from '../../../shared/units.js'
import type { Mm } from './mm.js'
import { FreedDevicePages } from './physical.js'
import { MIGRATION, PTE_WRITE, kindOf } from './pte.js'
import { ShmemObject } from './shmem.js'
import { MMAP_MIN_ADDR, PROT_WRITE, type Vma } from './vma.js'

function checkSpan (addr: number, length: number, what: string): void {
  if (!isPageAligned(addr) || !isPageAligned(length)) {
    throw svmError('EINVAL', `${what}: address and length must be multiples of ${PAGE_SIZE}`)
  }
  if (length <= 0) throw svmError('EINVAL', `${what}: length must be positive`)
}

export interface MmapArgs { length: number, addr?: number | undefined, prot: number, shared: boolean }

export async function mmap (mm: Mm, args: MmapArgs): Promise<number> {
  checkSpan(args.addr ?? 0, args.length, 'mmap')
  if (args.addr !== undefined) {
    if (args.addr < MMAP_MIN_ADDR) throw svmError('EPERM', `mmap: fixed address below mmap_min_addr (0x${MMAP_MIN_ADDR.toString(16)})`)
    if (args.addr + args.length > USER_SPACE_END) throw svmError('ENOMEM', 'mmap: mapping would end beyond user space (2^47)')
  }
  return await mm.lock.write(async () => {
    let addr = args.addr
    if (addr === undefined) {
      addr = mm.vmas.findFree(args.length)
      if (addr === undefined) throw svmError('ENOMEM', 'mmap: no free virtual space of that size')
    } else {
      await unmapLocked(mm, addr, addr + args.length)
    }
    let shm: ShmemObject | null = null
    if (args.shared) {
      shm = new ShmemObject(mm.phys.system)
      shm.get()
    }
    mm.vmas.insert({ start: addr, end: addr + args.length, prot: args.prot, shm, pgoff: 0 })
    return addr
  })
}

export async function munmap (mm: Mm, addr: number, length: number): Promise<void> {
  checkSpan(addr, length, 'munmap')
  if (addr + length > USER_SPACE_END) throw svmError('EINVAL', 'munmap: span beyond user space')
  await mm.lock.write(() => unmapLocked(mm, addr, addr + length))
}

/** Unmaps [start, end) with the write lock held (do_vmi_munmap). */
export async function unmapLocked (mm: Mm, start: number, end: number): Promise<void> {
  if (mm.vmas.overlapping(start, end).length === 0) return
  const inv = await mm.notifiers.begin(start, end, 'unmap', null)
  const freed = new FreedDevicePages()
  try {
    mm.zapRange(start, end, freed)
    for (const v of mm.vmas.remove(start, end)) v.shm?.put()
  } finally {
    inv.end()
  }
  await mm.ctx.freeDevicePages(freed)
}

export async function mprotect (mm: Mm, addr: number, length: number, prot: number): Promise<void> {
  checkSpan(addr, length, 'mprotect')
  const end = addr + length
  await mm.lock.write(async () => {
    if (!mm.vmas.covers(addr, end)) throw svmError('ENOMEM', 'mprotect: span is not fully mapped')
    let lo = Infinity
    let hi = -Infinity
    for (const v of mm.vmas.overlapping(addr, end)) {
      if (v.prot === prot) continue
      lo = Math.min(lo, Math.max(v.start, addr))
      hi = Math.max(hi, Math.min(v.end, end))
    }
    if (lo >= hi) return
    const inv = await mm.notifiers.begin(lo, hi, 'protection', null)
    try {
      mm.vmas.protect(addr, end, prot)
      if ((prot & PROT_WRITE) === 0) {
        mm.pt.forEachPresent(lo / PAGE_SIZE, hi / PAGE_SIZE, (vpn, pte) => {
          if ((pte & PTE_WRITE) !== 0) mm.pt.setKind(vpn, pte & ~PTE_WRITE)
        })
      }
    } finally {
      inv.end()
    }
  })
}

export interface MremapArgs {
  addr: number
  oldLength: number
  newLength: number
  newAddr?: number | undefined
  dontUnmap?: boolean | undefined
}

export async function mremap (mm: Mm, a: MremapArgs): Promise<number> {
  checkSpan(a.addr, a.oldLength, 'mremap')
  checkSpan(a.newAddr ?? 0, a.newLength, 'mremap')
  const dontUnmap = a.dontUnmap === true
  if (dontUnmap && a.oldLength !== a.newLength) throw svmError('EINVAL', 'mremap: dontUnmap needs oldLength == newLength')
  if (a.newAddr !== undefined) {
    if (a.newAddr < MMAP_MIN_ADDR) throw svmError('EPERM', 'mremap: newAddr below mmap_min_addr')
    if (a.newAddr + a.newLength > USER_SPACE_END) throw svmError('ENOMEM', 'mremap: target beyond user space')
    if (a.newAddr < a.addr + a.oldLength && a.addr < a.newAddr + a.newLength) {
      throw svmError('EINVAL', 'mremap: old and new spans overlap')
    }
  }
  const oldEnd = a.addr + a.oldLength
  return await mm.lock.write(async () => {
    const vma = mm.vmas.find(a.addr)
    if (vma === undefined || oldEnd > vma.end) throw svmError('EFAULT', 'mremap: old span is not inside one mapping')
    const move = a.newAddr !== undefined || dontUnmap
    if (!move) {
      if (a.newLength === a.oldLength) return a.addr
      if (a.newLength < a.oldLength) {
        await unmapLocked(mm, a.addr + a.newLength, oldEnd)
        return a.addr
      }
      const growEnd = a.addr + a.newLength
      if (oldEnd === vma.end && growEnd <= USER_SPACE_END && mm.vmas.overlapping(oldEnd, growEnd).length === 0) {
        vma.shm?.get()
        mm.vmas.insert({ ...vma, start: oldEnd, end: growEnd, pgoff: vma.pgoff + (oldEnd - vma.start) / PAGE_SIZE })
        return a.addr
      }
    }
    let target = a.newAddr
    if (target === undefined) {
      target = mm.vmas.findFree(a.newLength)
      if (target === undefined) throw svmError('ENOMEM', 'mremap: no free virtual space of that size')
    } else {
      await unmapLocked(mm, target, target + a.newLength)
    }
    await moveVma(mm, vma, a.addr, a.oldLength, target, a.newLength, dontUnmap)
    return target
  })
}

/** move_vma: new VMA at target, PTEs moved across, the old span unmapped (unless dontUnmap). */
async function moveVma (mm: Mm, vma: Vma, addr: number, oldLength: number, target: number, newLength: number, dontUnmap: boolean): Promise<void> {
  const oldEnd = addr + oldLength
  const moved = Math.min(oldLength, newLength)
  if (newLength < oldLength) await unmapLocked(mm, addr + newLength, oldEnd)
  vma.shm?.get()
  mm.vmas.insert({ start: target, end: target + newLength, prot: vma.prot, shm: vma.shm, pgoff: vma.pgoff + (addr - vma.start) / PAGE_SIZE })
  const inv = await mm.notifiers.begin(addr, addr + moved, 'unmap', null)
  try {
    const delta = (target - addr) / PAGE_SIZE
    const pid = mm.pid
    mm.pt.forEachPresent(addr / PAGE_SIZE, (addr + moved) / PAGE_SIZE, (vpn, pte, pfn) => {
      const to = vpn + delta
      mm.pt.set(vpn, 0, 0)
      mm.pt.set(to, pte, pfn)
      if (kindOf(pte) === MIGRATION) mm.ctx.sessions.get(pfn)?.moveMapping(pid, vpn, to)
      else mm.phys.relocate(pte, pfn, pid, vpn, to)
    })
    if (!dontUnmap) {
      for (const v of mm.vmas.remove(addr, addr + moved)) v.shm?.put()
    }
  } finally {
    inv.end()
  }
}

/**
 * Read-only views of placement, without faulting or moving anything:
 * residency (where each page lives) and snapshot (what a no-fault
 * hmm_range_fault would give a GPU of a given owner). Both are run-length
 * encoded, cover only pages inside VMAs (holes are omitted) and visit present
 * PTEs only, so a sparse terabyte costs what is populated.
 */
import { PAGE_SIZE } from '../../../shared/units.js'
import { deviceGpu } from '../../../shared/svm/page-id.js'
import type { Mm } from './mm.js'
import { DEVICE, MIGRATION, NONE, POISON, SYSTEM, ZERO, isWritable, kindOf } from './pte.js'
import { PROT_READ, PROT_WRITE, type Vma } from './vma.js'

export type Location = 'unpopulated' | 'system' | `gpu${number}`

export interface ResidencyRun { addr: number, length: number, location: Location }

export interface SnapshotRun {
  addr: number
  length: number
  access: 'none' | 'read' | 'write'
  location: Location
  inPlace: boolean
}

/** Where the page behind a PTE lives. */
export function locationOf (mm: Mm, pte: number, pfn: number): Location {
  switch (kindOf(pte)) {
    case SYSTEM:
      return 'system'
    case DEVICE:
    case POISON:
      return `gpu${deviceGpu(pfn)}`
    case MIGRATION: {
      const s = mm.ctx.sessions.get(pfn)
      if (s === undefined) return 'system'
      // Until it commits, a page in flight is where it came from.
      return s.direction === 'to_ram' ? `gpu${s.gpu}` : 'system'
    }
    default:
      return 'unpopulated'
  }
}

/**
 * Visits [start, end) inside VMAs as runs of equal descriptions. `describe`
 * gets the PTE (NONE for absent pages) and returns a string key plus the
 * value to emit; runs merge while keys match and addresses are contiguous.
 */
function runs<T extends { addr: number, length: number }> (
  mm: Mm,
  start: number,
  end: number,
  describe: (vpn: number, pte: number, pfn: number, vma: Vma) => { key: string, make: (addr: number, length: number) => T }
): T[] {
  const out: T[] = []
  let cur: { key: string, addr: number, length: number, make: (addr: number, length: number) => T } | null = null
  const emit = (addr: number, length: number, d: { key: string, make: (a: number, l: number) => T }): void => {
    if (cur !== null && cur.key === d.key && cur.addr + cur.length === addr) {
      cur.length += length
      return
    }
    if (cur !== null) out.push(cur.make(cur.addr, cur.length))
    cur = { key: d.key, addr, length, make: d.make }
  }
  for (const vma of mm.vmas.overlapping(start, end)) {
    const lo = Math.max(start, vma.start) / PAGE_SIZE
    const hi = Math.min(end, vma.end) / PAGE_SIZE
    let next = lo
    const gap = (to: number): void => {
      if (to <= next) return
      const shm = vma.shm
      if (shm !== null) {
        // Shared memory may hold pages this process has not mapped yet: visit those only.
        const base = vma.pgoff - vma.start / PAGE_SIZE
        for (const pgoff of shm.residentIn(base + next, base + to)) {
          const v = pgoff - base
          if (v > next) emit(next * PAGE_SIZE, (v - next) * PAGE_SIZE, describe(next, NONE, 0, vma))
          emit(v * PAGE_SIZE, PAGE_SIZE, describe(v, SYSTEM, shm.frame(pgoff, false) as number, vma))
          next = v + 1
        }
      }
      if (to > next) emit(next * PAGE_SIZE, (to - next) * PAGE_SIZE, describe(next, NONE, 0, vma))
    }
    mm.pt.forEachPresent(lo, hi, (vpn, pte, pfn) => {
      gap(vpn)
      emit(vpn * PAGE_SIZE, PAGE_SIZE, describe(vpn, pte, pfn, vma))
      next = vpn + 1
    })
    gap(hi)
  }
  if (cur !== null) {
    const c = cur as { addr: number, length: number, make: (addr: number, length: number) => T }
    out.push(c.make(c.addr, c.length))
  }
  return out
}

export function residency (mm: Mm, start: number, end: number): ResidencyRun[] {
  return runs<ResidencyRun>(mm, start, end, (_vpn, pte, pfn) => {
    const location = locationOf(mm, pte, pfn)
    return { key: location, make: (addr, length) => ({ addr, length, location }) }
  })
}

/** What hmm_range_fault without REQ_FAULT would report to a GPU whose owner is `owner`. */
export function snapshot (mm: Mm, start: number, end: number, owner: number | null): SnapshotRun[] {
  const links = mm.ctx.links
  return runs<SnapshotRun>(mm, start, end, (_vpn, pte, pfn, vma) => {
    const location = locationOf(mm, pte, pfn)
    const readable = (vma.prot & PROT_READ) !== 0
    const vmaWrite = (vma.prot & PROT_WRITE) !== 0
    let access: SnapshotRun['access'] = 'none'
    let inPlace = false
    switch (kindOf(pte)) {
      case ZERO:
        access = readable ? 'read' : 'none'
        break
      case SYSTEM:
        access = !readable ? 'none' : isWritable(pte) && vmaWrite ? 'write' : 'read'
        break
      case DEVICE:
        if (owner !== null && links.ownerOf(deviceGpu(pfn)) === owner && readable) {
          inPlace = true
          access = isWritable(pte) && vmaWrite ? 'write' : 'read'
        }
        break
    }
    return {
      key: `${access}|${location}|${inPlace ? 1 : 0}`,
      make: (addr, length) => ({ addr, length, access, location, inPlace })
    }
  })
}

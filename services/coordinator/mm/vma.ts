/**
 * Virtual memory areas of one process (vm_area_struct list), kept sorted and
 * non-overlapping. Changing part of an area splits it at the boundaries;
 * neighbours that become compatible (same protection, both private, or the
 * same shared object at contiguous offsets) merge again, as vma_merge does,
 * so mprotect of the middle and back leaves a single VMA.
 */
import { PAGE_SIZE, SZ_2M, USER_SPACE_END, alignDown } from '../../../shared/units.js'
import type { ShmemObject } from './shmem.js'
import { firstEndingAfter } from '../../../shared/util/sorted.js'

export const PROT_NONE = 0
export const PROT_READ = 1
export const PROT_WRITE = 2
export const PROT_RW = PROT_READ | PROT_WRITE

export type ProtName = 'rw' | 'r' | 'none'

export function protFromName (p: ProtName): number {
  return p === 'rw' ? PROT_RW : p === 'r' ? PROT_READ : PROT_NONE
}

export function protName (p: number): ProtName {
  return (p & PROT_WRITE) !== 0 ? 'rw' : (p & PROT_READ) !== 0 ? 'r' : 'none'
}

export interface Vma {
  start: number
  end: number
  prot: number
  /** The shared-memory object for MAP_SHARED mappings, else null (anonymous private). */
  shm: ShmemObject | null
  /** Page offset into `shm` of `start`. */
  pgoff: number
}

/** Lowest address mmap hands out or accepts (mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000
/** Where top-down placement starts, as Linux's mmap_base. */
export const MMAP_BASE = 0x7f0000000000

export class VmaList {
  private vmas: Vma[] = []

  get all (): readonly Vma[] {
    return this.vmas
  }

  get count (): number {
    return this.vmas.length
  }

  /** Index of the first VMA with end > addr. */
  private lowerBound (addr: number): number {
    return firstEndingAfter(this.vmas, addr)
  }


  find (addr: number): Vma | undefined {
    const v = this.vmas[this.lowerBound(addr)]
    return v !== undefined && v.start <= addr ? v : undefined
  }

  overlapping (start: number, end: number): Vma[] {
    const out: Vma[] = []
    for (let i = this.lowerBound(start); i < this.vmas.length; i++) {
      const v = this.vmas[i] as Vma
      if (v.start >= end) break
      out.push(v)
    }
    return out
  }

  /** True if [start, end) is mapped with no hole. */
  covers (start: number, end: number): boolean {
    let at = start
    for (const v of this.overlapping(start, end)) {
      if (v.start > at) return false
      at = v.end
    }
    return at >= end
  }

  /** Makes a VMA boundary at addr if addr falls strictly inside one. */
  splitAt (addr: number): void {
    const i = this.lowerBound(addr)
    const v = this.vmas[i]
    if (v === undefined || v.start >= addr || v.end <= addr) return
    const tail: Vma = { ...v, start: addr, pgoff: v.pgoff + (addr - v.start) / PAGE_SIZE }
    v.end = addr
    tail.shm?.get()
    this.vmas.splice(i + 1, 0, tail)
  }

  /** Removes [start, end); returns the removed pieces (caller drops their shm refs). */
  remove (start: number, end: number): Vma[] {
    this.splitAt(start)
    this.splitAt(end)
    const i = this.lowerBound(start)
    let j = i
    while (j < this.vmas.length && (this.vmas[j] as Vma).start < end) j++
    return this.vmas.splice(i, j - i)
  }

  /** Inserts a VMA into a hole (the caller has cleared the space) and merges. */
  insert (vma: Vma): void {
    const i = this.lowerBound(vma.start)
    const next = this.vmas[i]
    if (next !== undefined && next.start < vma.end) throw new Error('vma insert overlaps')
    this.vmas.splice(i, 0, vma)
    this.mergeAround(i)
  }

  /** Sets protection on [start, end) (which must be covered); returns the changed spans. */
  protect (start: number, end: number, prot: number): Array<{ start: number, end: number, old: number }> {
    this.splitAt(start)
    this.splitAt(end)
    const changed: Array<{ start: number, end: number, old: number }> = []
    for (let i = this.lowerBound(start); i < this.vmas.length; i++) {
      const v = this.vmas[i] as Vma
      if (v.start >= end) break
      if (v.prot !== prot) {
        changed.push({ start: v.start, end: v.end, old: v.prot })
        v.prot = prot
      }
    }
    this.mergeRange(start, end)
    return changed
  }

  /** Re-merges everything touching [start, end]. */
  mergeRange (start: number, end: number): void {
    let i = Math.max(0, this.lowerBound(start) - 1)
    while (i < this.vmas.length) {
      const v = this.vmas[i] as Vma
      if (v.start > end) break
      const n = this.vmas[i + 1]
      if (n !== undefined && compatible(v, n)) {
        v.end = n.end
        n.shm?.put()
        this.vmas.splice(i + 1, 1)
      } else {
        i++
      }
    }
  }

  /**
   * A free gap of `length` bytes, searched top-down from MMAP_BASE as Linux
   * does; mappings of 2 MiB or more are 2 MiB aligned (THP alignment).
   */
  findFree (length: number): number | undefined {
    const align = length >= SZ_2M ? SZ_2M : PAGE_SIZE
    let ceiling = MMAP_BASE
    let i = this.lowerBound(MMAP_BASE)
    const straddling = this.vmas[i]
    if (straddling !== undefined && straddling.start < MMAP_BASE) ceiling = straddling.start
    for (i = i - 1; ; i--) {
      const below = i >= 0 ? this.vmas[i] as Vma : undefined
      const floor = Math.max(below === undefined ? 0 : below.end, MMAP_MIN_ADDR)
      const candidate = alignDown(ceiling - length, align)
      if (candidate >= floor) return candidate
      if (below === undefined) break
      ceiling = below.start
    }
    // Nothing below the base: try above it, up to the end of user space.
    let at = MMAP_BASE
    for (const v of this.overlapping(MMAP_BASE, USER_SPACE_END)) {
      const candidate = alignUp(at, align)
      if (candidate + length <= v.start) return candidate
      at = Math.max(at, v.end)
    }
    const candidate = alignUp(at, align)
    return candidate + length <= USER_SPACE_END ? candidate : undefined
  }

  clone (): VmaList {
    const copy = new VmaList()
    copy.vmas = this.vmas.map((v) => ({ ...v }))
    return copy
  }

  private mergeAround (i: number): void {
    const v = this.vmas[i] as Vma
    this.mergeRange(v.start, v.end)
  }
}

function alignUp (n: number, a: number): number {
  const r = n % a
  return r === 0 ? n : n + a - r
}

function compatible (a: Vma, b: Vma): boolean {
  if (a.end !== b.start || a.prot !== b.prot) return false
  if (a.shm === null && b.shm === null) return true
  return a.shm !== null && a.shm === b.shm && a.pgoff + (a.end - a.start) / PAGE_SIZE === b.pgoff
}

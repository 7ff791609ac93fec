/**
 * VRAM allocator in the manner of drm_buddy: power-of-two blocks from 4 KiB
 * (order 0) to 2 MiB (order 9), split on allocation and merged with their
 * buddy on free. A block that merges back to 2 MiB is reported so its
 * backing can be dropped. Per-page state is two typed arrays.
 */
import { PAGE_SIZE, PAGES_PER_2M } from '../../../shared/units.js'

export const MAX_ORDER = 9

export class BuddyAllocator {
  /** Per pfn: order of the free block that starts here, else -1. */
  private readonly freeHead: Int8Array
  /** Per pfn: order of the allocated block that starts here, else -1. */
  private readonly allocHead: Int8Array
  private readonly freeLists: Array<Set<number>> = []
  private freePages: number

  constructor (readonly pages: number, private readonly onBlockFree: (pfn: number) => void = () => {}) {
    if (pages % PAGES_PER_2M !== 0) throw new RangeError('VRAM must be a whole number of 2 MiB blocks')
    this.freeHead = new Int8Array(pages).fill(-1)
    this.allocHead = new Int8Array(pages).fill(-1)
    for (let o = 0; o <= MAX_ORDER; o++) this.freeLists.push(new Set())
    for (let pfn = 0; pfn < pages; pfn += PAGES_PER_2M) this.addFree(pfn, MAX_ORDER)
    this.freePages = pages
  }

  get usedBytes (): number {
    return (this.pages - this.freePages) * PAGE_SIZE
  }

  get freeBytes (): number {
    return this.freePages * PAGE_SIZE
  }

  get largestFreeBytes (): number {
    for (let o = MAX_ORDER; o >= 0; o--) if ((this.freeLists[o] as Set<number>).size > 0) return (1 << o) * PAGE_SIZE
    return 0
  }

  /** A block of 2^order pages, or null when none is free. Returns its first pfn. */
  alloc (order: number): number | null {
    let o = order
    while (o <= MAX_ORDER && (this.freeLists[o] as Set<number>).size === 0) o++
    if (o > MAX_ORDER) return null
    const list = this.freeLists[o] as Set<number>
    const pfn = list.values().next().value as number
    this.removeFree(pfn, o)
    while (o > order) {
      o--
      this.addFree(pfn + (1 << o), o)
    }
    this.allocHead[pfn] = order
    this.freePages -= 1 << order
    return pfn
  }

  /** Frees the block allocated at pfn. */
  free (pfn: number): void {
    const allocated = this.allocHead[pfn]
    // Also undefined for a pfn outside the allocator: reject before touching the counts.
    if (allocated === undefined || allocated < 0) throw new Error(`buddy: pfn ${pfn} is not an allocated block`)
    let order: number = allocated
    this.allocHead[pfn] = -1
    this.freePages += 1 << order
    let head = pfn
    while (order < MAX_ORDER) {
      const buddy = head ^ (1 << order)
      if (this.freeHead[buddy] !== order) break
      this.removeFree(buddy, order)
      head = Math.min(head, buddy)
      order++
    }
    this.addFree(head, order)
    if (order === MAX_ORDER) this.onBlockFree(head)
  }

  /** Keeps only the first 2^order pages of the block at pfn, freeing the rest. */
  shrink (pfn: number, order: number): void {
    const was = this.allocHead[pfn]
    if (was === undefined || was < 0 || order > was || order < 0) throw new Error(`buddy: cannot shrink pfn ${pfn} to order ${order}`)
    for (let o = was - 1; o >= order; o--) {
      const tail = pfn + (1 << o)
      this.allocHead[tail] = o
      this.free(tail)
    }
    this.allocHead[pfn] = order
  }

  orderOf (pfn: number): number {
    return this.allocHead[pfn] as number
  }

  private addFree (pfn: number, order: number): void {
    this.freeHead[pfn] = order
    ;(this.freeLists[order] as Set<number>).add(pfn)
  }

  private removeFree (pfn: number, order: number): void {
    this.freeHead[pfn] = -1
    ;(this.freeLists[order] as Set<number>).delete(pfn)
  }
}

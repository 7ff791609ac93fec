/**
 * A GPU's VRAM as real bytes, backed lazily in 2 MiB chunks: an emulated
 * 16 GiB device costs what has been used. A chunk is backed on first use;
 * when the allocator reports its whole 2 MiB block free, its buffer is kept
 * for the next chunk that needs one, so host memory stays bounded by the most
 * the device has held at once and a fresh buffer's page faults are not paid
 * on every migration.
 *
 * Pages of an unbacked chunk read as zeros. A chunk backed with a reused
 * buffer holds old bytes, so its pages are marked stale one by one and
 * cleared the first time they are read or partly written; a caller that
 * overwrites pages whole (span) skips that.
 */
import { PAGE_SIZE, PAGES_PER_2M } from '../../../shared/units.js'

const CHUNK_SHIFT = 9
const CHUNK_MASK = PAGES_PER_2M - 1
const CHUNK_BYTES = PAGES_PER_2M * PAGE_SIZE
const ZERO_PAGE = new Uint8Array(PAGE_SIZE)

export class Vram {
  readonly pages: number
  private readonly chunks: Array<Uint8Array | undefined>
  private readonly spare: Uint8Array[] = []
  /** Per page: 1 while it holds a reused buffer's old bytes (reads must see zeros). */
  private readonly stale: Uint8Array
  private backed = 0

  constructor (readonly bytes: number) {
    this.pages = bytes / PAGE_SIZE
    this.chunks = new Array(Math.ceil(this.pages / PAGES_PER_2M))
    this.stale = new Uint8Array(this.pages)
  }

  get backedBytes (): number {
    return this.backed * CHUNK_BYTES
  }

  private check (pfn: number, npages: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn + npages > this.pages) throw new RangeError(`pfn ${pfn} outside VRAM`)
    if ((pfn & CHUNK_MASK) + npages > PAGES_PER_2M) throw new RangeError('span crosses a 2 MiB chunk')
  }

  private chunkOf (pfn: number): Uint8Array {
    const c = pfn >>> CHUNK_SHIFT
    let chunk = this.chunks[c]
    if (chunk === undefined) {
      const reused = this.spare.pop()
      if (reused !== undefined) this.stale.fill(1, c * PAGES_PER_2M, (c + 1) * PAGES_PER_2M)
      chunk = reused ?? new Uint8Array(CHUNK_BYTES)
      this.chunks[c] = chunk
      this.backed++
    }
    return chunk
  }

  /** A writable view of the page, reading as its current contents (zeros if never written). */
  page (pfn: number): Uint8Array {
    this.check(pfn, 1)
    const chunk = this.chunkOf(pfn)
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    const view = chunk.subarray(off, off + PAGE_SIZE)
    if (this.stale[pfn] === 1) {
      view.fill(0)
      this.stale[pfn] = 0
    }
    return view
  }

  /**
   * A writable view of npages pages from pfn that the caller overwrites
   * entirely; they must lie in one 2 MiB chunk (one buddy block).
   */
  span (pfn: number, npages: number): Uint8Array {
    this.check(pfn, npages)
    const chunk = this.chunkOf(pfn)
    this.stale.fill(0, pfn, pfn + npages)
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    return chunk.subarray(off, off + npages * PAGE_SIZE)
  }

  /** A view to read from; do not write to it. */
  readView (pfn: number): Uint8Array {
    this.check(pfn, 1)
    if (this.chunks[pfn >>> CHUNK_SHIFT] === undefined) return ZERO_PAGE
    return this.page(pfn)
  }

  /** A read view of npages consecutive pages inside one 2 MiB chunk (no copy). */
  readSpan (pfn: number, npages: number): Uint8Array {
    this.check(pfn, npages)
    const chunk = this.chunks[pfn >>> CHUNK_SHIFT]
    if (chunk === undefined) return new Uint8Array(npages * PAGE_SIZE)
    for (let p = pfn; p < pfn + npages; p++) {
      if (this.stale[p] === 1) this.page(p)
    }
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    return chunk.subarray(off, off + npages * PAGE_SIZE)
  }

  /** Clears a page (a BO's pre-clear), without backing an unbacked chunk. */
  zero (pfn: number): void {
    this.check(pfn, 1)
    const chunk = this.chunks[pfn >>> CHUNK_SHIFT]
    if (chunk === undefined) return
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    chunk.fill(0, off, off + PAGE_SIZE)
    this.stale[pfn] = 0
  }

  /** The allocator freed the whole 2 MiB block holding pfn: drop its backing. */
  release (pfn: number): void {
    const c = pfn >>> CHUNK_SHIFT
    const chunk = this.chunks[c]
    if (chunk === undefined) return
    this.chunks[c] = undefined
    this.backed--
    this.spare.push(chunk)
  }
}

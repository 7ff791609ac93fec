/**
 * A GPU's VRAM as real bytes, backed lazily in 2 MiB chunks: an emulated
 * 16 GiB device costs what has been written. A chunk is backed on its first
 * write and dropped again when the allocator reports its whole 2 MiB block
 * free; reading an unbacked page gives zeros.
 */
import { PAGE_SIZE, PAGES_PER_2M } from '../../../shared/units.js'

const CHUNK_SHIFT = 9
const CHUNK_MASK = PAGES_PER_2M - 1
const CHUNK_BYTES = PAGES_PER_2M * PAGE_SIZE
const ZERO_PAGE = new Uint8Array(PAGE_SIZE)
/**
 * Released chunks kept for reuse, up to this many bytes: allocating a fresh
 * 2 MiB buffer costs the host page faults on first touch, every time.
 */
const SPARE_BYTES = 64 * 1024 * 1024

export class Vram {
  readonly pages: number
  private readonly chunks: Array<Uint8Array | undefined>
  private readonly spare: Uint8Array[] = []
  private backed = 0

  constructor (readonly bytes: number) {
    this.pages = bytes / PAGE_SIZE
    this.chunks = new Array(Math.ceil(this.pages / PAGES_PER_2M))
  }

  get backedBytes (): number {
    return this.backed * PAGES_PER_2M * PAGE_SIZE
  }

  /** A writable view of the page (backs its chunk if needed). */
  page (pfn: number): Uint8Array {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.pages) throw new RangeError(`pfn ${pfn} outside VRAM`)
    const c = pfn >>> CHUNK_SHIFT
    const chunk = this.chunks[c] ?? this.back(c, false)
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    return chunk.subarray(off, off + PAGE_SIZE)
  }

  /**
   * Backs chunk c, preferably with a released buffer. Pages of an unbacked
   * chunk read as zeros, and live allocations may rely on that, so a reused
   * buffer is cleared unless the caller is about to overwrite all of it.
   */
  private back (c: number, overwritingAll: boolean): Uint8Array {
    let chunk = this.spare.pop()
    if (chunk === undefined) chunk = new Uint8Array(CHUNK_BYTES)
    else if (!overwritingAll) chunk.fill(0)
    this.chunks[c] = chunk
    this.backed++
    return chunk
  }

  /** A view to read from; a shared zero page when nothing was ever written there. Do not write to it. */
  readView (pfn: number): Uint8Array {
    const chunk = this.chunks[pfn >>> CHUNK_SHIFT]
    if (chunk === undefined) return ZERO_PAGE
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    return chunk.subarray(off, off + PAGE_SIZE)
  }

  /**
   * A writable view of npages pages from pfn, which the caller will overwrite
   * entirely; they must lie in one 2 MiB chunk (one buddy block).
   */
  span (pfn: number, npages: number): Uint8Array {
    // Check first: a refused span must not back a chunk.
    if ((pfn & CHUNK_MASK) + npages > PAGES_PER_2M) throw new RangeError('span crosses a 2 MiB chunk')
    if (!Number.isInteger(pfn) || pfn < 0 || pfn + npages > this.pages) throw new RangeError(`pfn ${pfn} outside VRAM`)
    const c = pfn >>> CHUNK_SHIFT
    const chunk = this.chunks[c] ?? this.back(c, npages === PAGES_PER_2M)
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    return chunk.subarray(off, off + npages * PAGE_SIZE)
  }

  /** Clears a page (a BO's pre-clear), without backing an unbacked chunk. */
  zero (pfn: number): void {
    const chunk = this.chunks[pfn >>> CHUNK_SHIFT]
    if (chunk === undefined) return
    const off = (pfn & CHUNK_MASK) * PAGE_SIZE
    chunk.fill(0, off, off + PAGE_SIZE)
  }

  /** Drops the backing of the 2 MiB chunk holding pfn (its block is free). */
  release (pfn: number): void {
    const c = pfn >>> CHUNK_SHIFT
    const chunk = this.chunks[c]
    if (chunk !== undefined) {
      this.chunks[c] = undefined
      this.backed--
      if ((this.spare.length + 1) * CHUNK_BYTES <= SPARE_BYTES) this.spare.push(chunk)
    }
  }
}

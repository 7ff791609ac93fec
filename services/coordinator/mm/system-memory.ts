/**
 * System RAM: real bytes in 64 MiB slabs, handed out as 4 KiB frames (the
 * emulator's struct page). A slab is a zero-filled ArrayBuffer that the OS
 * backs lazily, so memory never touched costs nothing; a frame that was never
 * used needs no clearing when first allocated.
 *
 * Frame 0 is the shared zero page: read faults on anonymous memory map it
 * read-only, as do_anonymous_page does, and it is never written or freed.
 *
 * A frame is in use while it is mapped (rmap count) or pinned (a migration
 * holding it as a source, a shared-memory object owning it).
 */
import { PAGE_SIZE } from '../../../shared/units.js'
import { svmError } from '../../../shared/errors.js'
import { RmapSpace } from './rmap.js'

export const ZERO_FRAME = 0
const SLAB_SHIFT = 14
export const SLAB_FRAMES = 1 << SLAB_SHIFT
const SLAB_MASK = SLAB_FRAMES - 1

export class SystemMemory {
  readonly rmap = new RmapSpace()
  private readonly slabs: Uint8Array[] = []
  private pins: Uint16Array[] = []
  private freeStack = new Int32Array(1024)
  private freeTop = 0
  /** Frames below this have been handed out at least once. */
  private highWater = 1
  private inUse = 0

  /** `limitBytes` caps the RAM the emulated machine has (ENOMEM beyond). */
  constructor (readonly limitBytes = 64 * 1024 ** 3) {
    this.addSlab()
  }

  get usedFrames (): number {
    return this.inUse
  }

  get slabBytes (): number {
    return this.slabs.length * SLAB_FRAMES * PAGE_SIZE
  }

  /** A zeroed frame, or ENOMEM. */
  alloc (): number {
    if (this.freeTop === 0) return this.carve()
    const frame = this.reuse()
    this.view(frame).fill(0)
    return frame
  }

  /** A frame the caller overwrites entirely at once (a copy): not cleared. */
  allocDirty (): number {
    return this.freeTop === 0 ? this.carve() : this.reuse()
  }

  private reuse (): number {
    this.inUse++
    return this.freeStack[--this.freeTop] as number
  }

  /** A never-used frame: its slab came zero-filled. */
  private carve (): number {
    if ((this.highWater + 1) * PAGE_SIZE > this.limitBytes) throw svmError('ENOMEM', 'system memory exhausted')
    const frame = this.highWater++
    if (frame >= this.slabs.length * SLAB_FRAMES) this.addSlab()
    this.inUse++
    return frame
  }

  /** Returns a frame that is neither mapped nor pinned to the free pool. */
  releaseIfUnused (frame: number): boolean {
    if (frame === ZERO_FRAME) return false
    if (this.rmap.count(frame) !== 0 || this.pinCount(frame) !== 0) return false
    if (this.freeTop === this.freeStack.length) {
      const grown = new Int32Array(this.freeStack.length * 2)
      grown.set(this.freeStack)
      this.freeStack = grown
    }
    this.freeStack[this.freeTop++] = frame
    this.inUse--
    return true
  }

  isLive (frame: number): boolean {
    return frame === ZERO_FRAME ||
      (frame > 0 && frame < this.highWater && (this.rmap.count(frame) !== 0 || this.pinCount(frame) !== 0))
  }

  pin (frame: number): void {
    const b = this.pins[frame >>> SLAB_SHIFT] as Uint16Array
    b[frame & SLAB_MASK] = (b[frame & SLAB_MASK] as number) + 1
  }

  /** Drops a pin and frees the frame if nothing else holds it. */
  unpin (frame: number): void {
    const b = this.pins[frame >>> SLAB_SHIFT] as Uint16Array
    const v = b[frame & SLAB_MASK] as number
    if (v === 0) throw new Error(`frame ${frame} is not pinned`)
    b[frame & SLAB_MASK] = v - 1
    this.releaseIfUnused(frame)
  }

  pinCount (frame: number): number {
    return (this.pins[frame >>> SLAB_SHIFT] as Uint16Array)[frame & SLAB_MASK] as number
  }

  /** The frame's 4 KiB, as a view (no copy). */
  view (frame: number): Uint8Array {
    const slab = this.slabs[frame >>> SLAB_SHIFT] as Uint8Array
    const off = (frame & SLAB_MASK) * PAGE_SIZE
    return slab.subarray(off, off + PAGE_SIZE)
  }

  /** n consecutive frames as one view; they must lie in one slab (see sameSlab). */
  viewRun (frame: number, n: number): Uint8Array {
    const slab = this.slabs[frame >>> SLAB_SHIFT] as Uint8Array
    const off = (frame & SLAB_MASK) * PAGE_SIZE
    return slab.subarray(off, off + n * PAGE_SIZE)
  }

  /** Are frames a and a + 1 neighbours in one slab (so a view can span both)? */
  static adjacent (a: number, b: number): boolean {
    return b === a + 1 && (b & SLAB_MASK) !== 0
  }

  /** Bytes of bookkeeping (everything but page data), for the G5 figure. */
  metadataBytes (): number {
    return this.rmap.metadataBytes() + this.pins.length * SLAB_FRAMES * 2 + this.freeStack.byteLength
  }

  private addSlab (): void {
    this.slabs.push(new Uint8Array(SLAB_FRAMES * PAGE_SIZE))
    this.pins.push(new Uint16Array(SLAB_FRAMES))
    this.rmap.ensure(this.slabs.length * SLAB_FRAMES)
  }
}

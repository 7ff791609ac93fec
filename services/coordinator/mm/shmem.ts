/**
 * The object behind MAP_SHARED|MAP_ANONYMOUS mappings (the kernel's shmem
 * file). Its pages are shared by every VMA that maps it, across fork, and
 * outlive any one mapping: the object pins them until the last VMA
 * referencing it goes away. Shared memory is not anonymous memory, so it is
 * never migrated to VRAM (migrate_devmem is false for it), only mapped in
 * place.
 */
import type { SystemMemory } from './system-memory.js'

let nextId = 1

export class ShmemObject {
  readonly id = nextId++
  /** page offset within the object -> frame */
  private readonly pages = new Map<number, number>()
  private vmaRefs = 0

  constructor (private readonly memory: SystemMemory) {}

  /** The frame at pgoff, allocating a zeroed one if asked. */
  frame (pgoff: number, allocate: boolean): number | undefined {
    let f = this.pages.get(pgoff)
    if (f === undefined && allocate) {
      f = this.memory.alloc()
      this.memory.pin(f)
      this.pages.set(pgoff, f)
    }
    return f
  }

  /** Page offsets in [lo, hi) that hold a frame, ascending. */
  residentIn (lo: number, hi: number): number[] {
    const out: number[] = []
    if (hi - lo < this.pages.size) {
      for (let p = lo; p < hi; p++) if (this.pages.has(p)) out.push(p)
    } else {
      for (const p of this.pages.keys()) if (p >= lo && p < hi) out.push(p)
      out.sort((a, b) => a - b)
    }
    return out
  }

  get residentPages (): number {
    return this.pages.size
  }

  get (): void {
    this.vmaRefs++
  }

  /** Drops a VMA reference; the last one frees the pages. */
  put (): void {
    if (--this.vmaRefs > 0) return
    for (const f of this.pages.values()) this.memory.unpin(f)
    this.pages.clear()
  }
}

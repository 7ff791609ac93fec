/**
 * drm_gpusvm for one GPU VM: the notifiers (512 MiB spans by default, each
 * registered with the CPU side) and the ranges inside them. Ranges are
 * created by find_or_insert, never split or resized, and removed by the
 * garbage collector after an unmap; a notifier with no range left is removed
 * too (and unregistered). Notifier ids are unique across the GPU, since the
 * coordinator addresses invalidations by (gpu, notifier id).
 */
import { alignDown } from '../../../shared/units.js'
import { GpuNotifier } from './notifier.js'
import type { SvmRange } from './range.js'

export const NOTIFIER_SIZE = 512 * 1024 * 1024

export class DrmGpusvm {
  /** Sorted by start. */
  readonly notifiers: GpuNotifier[] = []
  /** In-flight find_or_insert calls per notifier: those are not removed while used. */
  private readonly users = new Map<GpuNotifier, number>()

  constructor (readonly pid: number, private readonly newId: () => number, readonly notifierSize = NOTIFIER_SIZE) {}

  findNotifier (addr: number): GpuNotifier | undefined {
    for (const n of this.notifiers) {
      if (n.start > addr) break
      if (addr < n.end) return n
    }
    return undefined
  }

  /** drm_gpusvm_notifier_find, else drm_gpusvm_notifier_alloc (registered by the first range_prepare). */
  notifierFor (addr: number): GpuNotifier {
    const found = this.findNotifier(addr)
    if (found !== undefined) return found
    const start = alignDown(addr, this.notifierSize)
    const n = new GpuNotifier(this.newId(), start, start + this.notifierSize)
    let i = 0
    while (i < this.notifiers.length && (this.notifiers[i] as GpuNotifier).start < start) i++
    this.notifiers.splice(i, 0, n)
    return n
  }

  use (n: GpuNotifier): void {
    this.users.set(n, (this.users.get(n) ?? 0) + 1)
  }

  unuse (n: GpuNotifier): void {
    const c = (this.users.get(n) ?? 1) - 1
    if (c <= 0) this.users.delete(n)
    else this.users.set(n, c)
  }

  rangeFind (addr: number): SvmRange | undefined {
    return this.findNotifier(addr)?.find(addr)
  }

  rangesOverlapping (start: number, end: number): SvmRange[] {
    const out: SvmRange[] = []
    for (const n of this.notifiers) {
      if (n.start >= end) break
      if (n.end <= start) continue
      out.push(...n.overlapping(start, end))
    }
    return out
  }

  forEachRange (fn: (r: SvmRange) => void): void {
    for (const n of this.notifiers) for (const r of n.ranges) fn(r)
  }

  /** drm_gpusvm_range_insert; false when it would overlap (a concurrent fault won). */
  insert (r: SvmRange): boolean {
    return r.notifier.insert(r)
  }

  /** drm_gpusvm_range_remove; returns the notifier if it is now empty and was dropped. */
  remove (r: SvmRange): GpuNotifier | null {
    const n = r.notifier
    n.remove(r)
    return this.dropIfEmpty(n)
  }

  /** Removes an empty notifier nobody is using; returns it if removed. */
  dropIfEmpty (n: GpuNotifier): GpuNotifier | null {
    if (n.ranges.length > 0 || this.users.has(n) || n.removed) return null
    const i = this.notifiers.indexOf(n)
    if (i >= 0) this.notifiers.splice(i, 1)
    n.removed = true
    return n
  }

  /** drm_gpusvm_fini: every notifier and range goes. */
  fini (): GpuNotifier[] {
    const all = this.notifiers.splice(0)
    for (const n of all) {
      n.removed = true
      n.ranges.splice(0)
    }
    return all
  }
}

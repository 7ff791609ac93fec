/**
 * A GPU VM in fault mode (xe_vm with its SVM state): the drm_gpusvm, the GPU
 * page table, the madvise attributes and the garbage-collector list. Holds
 * the driver side of invalidation (xe_svm_invalidate): zap the GPU PTEs of
 * every bound range the invalidation touches, unmap their pages, and on
 * UNMAP mark them unmapped (partially, if they stick out) and queue them for
 * the collector, which removes them at the start of the next fault. Bind
 * writes PTEs only for ranges whose pages are still valid.
 */
import { PAGE_SIZE } from '../../../shared/units.js'
import { Attributes, type Attrs } from './attributes.js'
import { DrmGpusvm } from './gpusvm.js'
import { GpuPageTable } from './gpu-page-table.js'
import type { GpuNotifier } from './notifier.js'
import { PROTO_DRIVER, PROTO_SYSTEM, dmaId, dmaProto, pteEncode } from './page-addr.js'
import type { SvmRange } from './range.js'

export type MmuEvent = 'unmap' | 'clear' | 'protection' | 'migrate' | 'release'

export class GpuVm {
  readonly svm: DrmGpusvm
  readonly pt = new GpuPageTable()
  readonly attrs = new Attributes()
  private gcList: SvmRange[] = []
  closed = false
  /** Invalidation callbacks run (for counters). */
  invalidations = 0

  constructor (readonly id: number, readonly pid: number, newNotifierId: () => number) {
    this.svm = new DrmGpusvm(pid, newNotifierId)
  }

  /** xe_svm_invalidate + drm_gpusvm's callback, for one notifier. Synchronous. */
  invalidate (n: GpuNotifier, evStart: number, evEnd: number, event: MmuEvent): void {
    const start = Math.max(n.start, evStart)
    const end = Math.min(n.end, evEnd)
    const ranges = n.overlapping(start, end)
    if (ranges.length === 0) return
    this.invalidations++
    for (const r of ranges) {
      if (!r.unmapped && r.tilePresent) this.zap(r)
    }
    for (const r of ranges) {
      this.unmapPages(r)
      if (event === 'unmap' && !this.closed) {
        r.unmapped = true
        if (r.start < evStart || r.end > evEnd) r.partialUnmap = true
        if (!r.queuedForGc) {
          r.queuedForGc = true
          this.gcList.push(r)
        }
      }
    }
  }

  /** xe_pt_zap_ptes_range: the GPU can no longer reach the range's pages. */
  zap (r: SvmRange): void {
    this.pt.zap(r.start / PAGE_SIZE, r.end / PAGE_SIZE)
    if (r.tilePresent) r.tileInvalidated = true
  }

  /**
   * drm_gpusvm_range_unmap_pages: undo the DMA/device mappings (nothing to
   * release for system frames or this device's own VRAM in the emulator) and
   * clear the flags, so the range is no longer valid.
   */
  unmapPages (r: SvmRange): void {
    r.hasDmaMapping = false
    r.hasDevmemPages = false
    r.dpagemap = null
  }

  /**
   * xe_svm_garbage_collector: remove every unmapped range and reset the
   * attributes where it was. Returns notifiers that became empty.
   */
  gc (): GpuNotifier[] {
    if (this.gcList.length === 0) return []
    const list = this.gcList
    this.gcList = []
    const emptied: GpuNotifier[] = []
    for (const r of list) {
      this.zap(r)
      const n = this.svm.remove(r)
      if (n !== null) emptied.push(n)
      this.attrs.reset(r.start, r.end)
    }
    return emptied
  }

  get pendingGc (): number {
    return this.gcList.length
  }

  /** xe_vm_range_rebind: PTEs for a range whose pages are valid; false = -EAGAIN. */
  bind (r: SvmRange, attrs: Attrs): boolean {
    if (!r.pagesValid || r.dma === null || r.unmapped) return false
    const atomics = attrs.atomic !== 'cpu'
    const base = r.start / PAGE_SIZE
    for (let i = 0; i < r.npages; i++) {
      const a = r.dma[i] as number
      const proto = dmaProto(a)
      this.pt.set(base + i, pteEncode(dmaId(a), proto, !r.readOnly, atomics && proto === PROTO_DRIVER))
    }
    r.tilePresent = true
    r.tileInvalidated = false
    return true
  }

  /** Where a bound range's pages are, for reports. */
  locationOf (r: SvmRange): string {
    if (r.hasDevmemPages && r.dpagemap !== null) return `gpu${r.dpagemap}`
    if (r.dma === null || !r.hasDmaMapping) return 'unpopulated'
    for (let i = 0; i < r.npages; i++) {
      const a = r.dma[i] as number
      if (dmaProto(a) !== PROTO_SYSTEM || dmaId(a) !== 0) return 'system'
    }
    return 'unpopulated'
  }

  /** drm_gpusvm_fini (VM destroy): unbind everything. Returns the notifiers to unregister. */
  close (): GpuNotifier[] {
    this.closed = true
    this.pt.clear()
    this.gcList = []
    return this.svm.fini()
  }
}

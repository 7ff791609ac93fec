/**
 * drm_gpusvm_range with its embedded drm_gpusvm_pages and xe's per-range
 * state. A range is one chunk (4K, 64K or 2M), never split or resized; it
 * maps either system pages or the pages of one device pagemap.
 *
 * valid == hasDevmemPages || hasDmaMapping (flags, not seqno); the flags are
 * only changed in notifier-lock sections (synchronous code here).
 */
import { PAGE_SIZE } from '../../../shared/units.js'
import type { GpuNotifier } from './notifier.js'

export class SvmRange {
  readonly npages: number
  /** drm_pagemap_addr per page (page-addr.ts), allocated by the first get_pages. */
  dma: Float64Array | null = null
  /** GPU owning the device pages mapped (pages.dpagemap), else null. */
  dpagemap: number | null = null
  /** Mapped for reading only (a read fault's context). */
  readOnly = true
  notifierSeq = Number.MAX_SAFE_INTEGER
  // drm_gpusvm_pages flags
  unmapped = false
  partialUnmap = false
  hasDevmemPages = false
  hasDmaMapping = false
  // xe_svm_range
  tilePresent = false
  tileInvalidated = false
  queuedForGc = false

  constructor (
    readonly notifier: GpuNotifier,
    readonly start: number,
    readonly end: number,
    readonly migrateDevmem: boolean
  ) {
    this.npages = (end - start) / PAGE_SIZE
  }

  get size (): number {
    return this.end - this.start
  }

  /** drm_gpusvm_range_pages_valid */
  get pagesValid (): boolean {
    return this.hasDevmemPages || this.hasDmaMapping
  }

  /** xe_vm_has_valid_gpu_mapping */
  get bound (): boolean {
    return this.tilePresent && !this.tileInvalidated
  }
}

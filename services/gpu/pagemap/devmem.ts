/**
 * One device-memory allocation backing one migrated range (the VRAM BO of
 * drm_pagemap_devmem) together with its zdd reference count: one reference
 * per live device page plus the creator's while the migration runs. When the
 * last reference goes the allocation is released, exactly once, and its
 * block returns to the allocator.
 */
export class Devmem {
  refs = 1
  released = false
  /** Set while evict_to_ram works on it, so two evictions do not race. */
  evicting = false
  /** Set while its migration runs (the creator's reference is held): not evictable. */
  migrating = false
  /** drm_pagemap_devmem.timeslice_expiration (ms since epoch). */
  timesliceExpiration = 0

  constructor (
    readonly id: number,
    readonly pfn: number,
    readonly npages: number,
    readonly pid: number
  ) {}

  get bytes (): number {
    return this.npages * 4096
  }

  owns (pfn: number): boolean {
    return pfn >= this.pfn && pfn < this.pfn + this.npages
  }
}

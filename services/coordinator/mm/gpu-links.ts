/**
 * What the CPU-side mm needs from the GPUs, as an interface: the coordinator
 * implements it over RPC (with deadlines, and declaring a GPU lost when one
 * passes), tests implement it with doubles. Keeping mm behind this seam is
 * what lets it run without I/O.
 */
export type MmuEvent = 'unmap' | 'clear' | 'protection' | 'migrate' | 'release'

export interface InvalidateEvent {
  /** The GPU's notifier id. */
  notifier: number
  /** The invalidated span clamped to the notifier. */
  start: number
  end: number
  event: MmuEvent
  /** For 'migrate': the device-private owner the migration is for (else null). */
  owner: number | null
  /** The notifier's sequence number once this invalidation has ended. */
  seq: number
}

export interface MigrateToRamRequest {
  pid: number
  /** Faulting address. */
  addr: number
  /** The device page faulted on. */
  pfn: number
  /** Bounds of the VMA holding addr. */
  vmaStart: number
  vmaEnd: number
}

export interface GpuLinks {
  /**
   * Delivers invalidation callbacks for one process to one GPU and resolves
   * when it acknowledges. Never rejects: a GPU that misses its deadline is
   * declared lost (and its pages poisoned) before this resolves.
   */
  invalidate: (gpu: number, pid: number, events: InvalidateEvent[]) => Promise<void>
  /** The CPU fault path: asks the page's GPU to migrate it back (dev_pagemap_ops.migrate_to_ram). */
  migrateToRam: (gpu: number, req: MigrateToRamRequest) => Promise<{ retryAfterMs: number }>
  /** folio_free for device pages no PTE maps any more; resolves once the VRAM is free. */
  freeDevicePages: (gpu: number, pfns: number[]) => Promise<void>
  /** The device-private owner (interconnect group) of a GPU, or null if it is not online. */
  ownerOf: (gpu: number) => number | null
  /** True once a GPU has been declared lost (its pages are poison). */
  isLost: (gpu: number) => boolean
}

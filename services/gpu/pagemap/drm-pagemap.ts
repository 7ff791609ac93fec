/**
 * drm_pagemap for one GPU: its device-private memory (VRAM bytes and the
 * buddy allocator), the devmem allocations with their zdd reference counts,
 * and the operations that move pages in and out:
 *
 *   - allocate: a VRAM BO for a range, evicting the least recently used SVM
 *     allocations to system memory under pressure and retrying, as TTM does;
 *   - migrateToDevmem: fill a fresh allocation from the pages collected by
 *     migrate_vma_setup (unpopulated pages arrive as zeros, sources copied in
 *     coalesced runs) and commit; all or nothing, with no VRAM leaked;
 *   - migrateToRam: the CPU fault path, the whole allocation around the
 *     faulting page, honouring the migration timeslice;
 *   - evictToRam: every page of one allocation, wherever it is mapped.
 *
 * A device page is live from its migration's commit until the coordinator
 * reports that no PTE maps it (folio_free), which drops its zdd reference.
 */
import { svmError, hasCode } from '../../../shared/errors.js'
import { PAGE_SIZE, PAGES_PER_2M, alignDown } from '../../../shared/units.js'
import { PayloadCursor, type Payload } from '../../../shared/transport/payload.js'
import { type Log, silentLog } from '../../../shared/util/log.js'
import type { GpuCounters } from '../../../shared/schemas/vm.js'
import type { CoordinatorPort, FaultAfter, StepOutcome, ToRam } from '../coordinator-port.js'
import type { SelfInvalidation } from '../svm/self-invalidation.js'
import { PROTO_DRIVER, dmaEncode } from '../svm/page-addr.js'
import { deviceId } from '../../../shared/svm/page-id.js'
import type { JobStats } from '../counters.js'
import { BuddyAllocator, MAX_ORDER } from './buddy-allocator.js'
import { Devmem } from './devmem.js'
import { Vram } from './vram.js'

/** VRAM set aside for a migration before asking for it. */
export interface Reservation { pfn: number, pages: number }

export interface Collected {
  session: number
  /** Per page: 1 = copy from the payload (in order), 0 = zero-fill. */
  copy: readonly number[]
  data: Payload | null
}

export class DrmPagemap {
  readonly vram: Vram
  readonly buddy: BuddyAllocator
  /** Allocations, least recently used first. */
  private readonly devmems = new Map<number, Devmem>()
  private readonly pfnDevmem: Int32Array
  private readonly pageLive: Uint8Array
  private nextDevmemId = 1
  /** Bumped when a new pagemap object is created (dynamic pagemaps). */
  id = 1

  constructor (
    readonly gpu: number,
    bytes: number,
    private readonly port: CoordinatorPort,
    private readonly counters: GpuCounters,
    private readonly log: Log = silentLog,
    private readonly selfInvalidate: ((pid: number, start: number, end: number) => SelfInvalidation) | null = null
  ) {
    this.vram = new Vram(bytes)
    this.buddy = new BuddyAllocator(this.vram.pages, (pfn) => { this.vram.release(pfn) })
    this.pfnDevmem = new Int32Array(this.vram.pages).fill(-1)
    this.pageLive = new Uint8Array(this.vram.pages)
  }

  get allocations (): number {
    return this.devmems.size
  }

  devmemOf (pfn: number): Devmem | undefined {
    if (pfn < 0 || pfn >= this.pfnDevmem.length) return undefined
    const id = this.pfnDevmem[pfn] as number
    return id < 0 ? undefined : this.devmems.get(id)
  }

  isLive (pfn: number): boolean {
    return this.pageLive[pfn] === 1
  }

  /** Marks an allocation recently used (LRU for eviction). */
  touch (d: Devmem): void {
    if (this.devmems.delete(d.id)) this.devmems.set(d.id, d)
  }

  // ------------------------------------------------------------ device_map

  /**
   * drm_pagemap_ops.device_map for this device: the address a GPU uses for
   * one of these pages. This GPU reaches its own VRAM directly (the DPA,
   * proto DRIVER); mapping for another device would be a P2P address, which
   * this version does not provide (see get-pages.ts).
   */
  deviceMap (pfn: number, forGpu: number): number {
    if (forGpu !== this.gpu) throw svmError('EOPNOTSUPP', `gpu${forGpu} cannot map gpu${this.gpu}'s VRAM peer-to-peer here`)
    return dmaEncode(deviceId(this.gpu, pfn), PROTO_DRIVER)
  }

  /** drm_pagemap_ops.device_unmap: nothing to undo for the device's own VRAM. */
  deviceUnmap (_addr: number): void {}

  // ------------------------------------------------------------ allocation

  /**
   * A devmem of npages (a power of two up to 2 MiB) for pid, with the
   * creator's reference. Under pressure, evicts least recently used
   * allocations and retries; ENOMEM when nothing more can go.
   */
  async allocate (npages: number, pid: number): Promise<Devmem> {
    const order = Math.log2(npages)
    if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) throw svmError('EINVAL', `cannot allocate ${npages} pages`)
    const tried = new Set<number>()
    for (;;) {
      const pfn = this.buddy.alloc(order)
      if (pfn !== null) {
        const d = new Devmem(this.nextDevmemId++, pfn, npages, pid)
        d.migrating = true
        this.devmems.set(d.id, d)
        this.pfnDevmem.fill(d.id, pfn, pfn + npages)
        return d
      }
      let victim: Devmem | undefined
      for (const d of this.devmems.values()) {
        if (!d.evicting && !d.migrating && !tried.has(d.id)) { victim = d; break }
      }
      if (victim === undefined) throw svmError('ENOMEM', `VRAM of gpu${this.gpu} exhausted (${this.buddy.usedBytes} bytes in use)`)
      tried.add(victim.id)
      try {
        await this.evictToRam(victim)
      } catch (err) {
        if (!hasCode(err, 'EBUSY', 'EFAULT')) throw err
      }
    }
  }

  /** Drops one zdd reference; the last one releases the allocation. */
  put (d: Devmem): void {
    if (d.released) throw new Error(`devmem ${d.id} released twice`)
    if (--d.refs > 0) return
    d.released = true
    this.devmems.delete(d.id)
    this.pfnDevmem.fill(-1, d.pfn, d.pfn + d.npages)
    this.buddy.free(d.pfn)
  }

  /** folio_free: these device pages are mapped nowhere any more. */
  freePages (pfns: readonly number[]): void {
    for (const pfn of pfns) {
      if (this.pageLive[pfn] !== 1) {
        this.log.warn({ pfn }, 'free of a device page that is not live')
        continue
      }
      this.pageLive[pfn] = 0
      const d = this.devmemOf(pfn)
      if (d !== undefined) this.put(d)
    }
  }

  // ------------------------------------------------------------ to VRAM

  /**
   * drm_pagemap_populate_mm: a VRAM allocation for [start, end) of pid, then
   * drm_pagemap_migrate_to_devmem into it. The pages are collected either
   * before (already done by the caller, fused with find_or_insert) or after
   * the allocation. The creator's reference is dropped at the end, so an
   * allocation no page made it into is released at once.
   */
  async populate (
    npages: number,
    pid: number,
    source: { collected: Collected } | { collect: () => Promise<Collected | 'equal'> },
    commit: (dst: number) => Promise<{ failed: readonly number[] }>,
    timesliceMs: number,
    job?: JobStats
  ): Promise<{ placed: number, equal: boolean }> {
    let collected = 'collected' in source ? source.collected : null
    let d: Devmem
    try {
      d = await this.allocate(npages, pid)
    } catch (err) {
      if (collected !== null) await this.port.abort(collected.session).catch(() => [])
      throw err
    }
    try {
      if (collected === null) {
        const r = await (source as { collect: () => Promise<Collected | 'equal'> }).collect()
        if (r === 'equal') return { placed: 0, equal: true }
        collected = r
      }
      return { placed: await this.migrateToDevmem(d, collected, commit, timesliceMs, job), equal: false }
    } finally {
      d.migrating = false
      this.put(d)
    }
  }

  /**
   * drm_pagemap_migrate_to_devmem after migrate_vma_setup: copy the sources
   * in (coalesced runs), zero the rest, commit. Returns the pages placed; on
   * failure nothing stays in VRAM and the collection is undone.
   */
  private async migrateToDevmem (
    d: Devmem,
    c: Collected,
    commit: (dst: number) => Promise<{ failed: readonly number[] }>,
    timesliceMs: number,
    job?: JobStats
  ): Promise<number> {
    const n = d.npages
    try {
      if (c.copy.length !== n) throw svmError('EINVAL', `collected ${c.copy.length} pages for an allocation of ${n}`)
      this.fill(d, c.copy, c.data)
    } catch (err) {
      await this.port.abort(c.session).catch(() => [])
      throw err
    }
    for (let k = 0; k < n; k++) this.pageLive[d.pfn + k] = 1
    d.refs += n // each destination page holds the zdd
    let failed: readonly number[]
    try {
      failed = (await commit(d.pfn)).failed
    } catch (err) {
      for (let k = 0; k < n; k++) this.pageLive[d.pfn + k] = 0
      d.refs -= n
      throw err
    }
    for (const k of failed) {
      this.pageLive[d.pfn + k] = 0
      d.refs--
    }
    d.timesliceExpiration = Date.now() + timesliceMs
    const placed = n - failed.length
    this.countIn(placed, job)
    return placed
  }

  // ------------------------------------------------------------ fused (one exchange)

  /** Sets VRAM aside for a small migration, without evicting anything; null if none is free. */
  reserve (npages: number): Reservation | null {
    const pfn = this.buddy.alloc(Math.log2(npages))
    return pfn === null ? null : { pfn, pages: npages }
  }

  unreserve (r: Reservation): void {
    this.buddy.free(r.pfn)
  }

  /**
   * The coordinator collected the range and committed it straight to the
   * reservation: write the bytes in now, synchronously, before any later
   * message can touch these pages. Returns the pages placed.
   */
  adopt (r: Reservation, pid: number, copy: readonly number[], data: Payload | null, failed: readonly number[], timesliceMs: number, job?: JobStats): number {
    const n = copy.length
    if (n > r.pages || !Number.isInteger(Math.log2(n))) throw svmError('EIO', `committed ${n} pages to a reservation of ${r.pages}`)
    if (n < r.pages) this.buddy.shrink(r.pfn, Math.log2(n))
    const d = new Devmem(this.nextDevmemId++, r.pfn, n, pid)
    this.devmems.set(d.id, d)
    this.pfnDevmem.fill(d.id, r.pfn, r.pfn + n)
    this.fill(d, copy, data)
    for (let k = 0; k < n; k++) this.pageLive[d.pfn + k] = 1
    for (const k of failed) this.pageLive[d.pfn + k] = 0
    const placed = n - failed.length
    d.refs += placed
    d.timesliceExpiration = Date.now() + timesliceMs
    this.countIn(placed, job)
    this.put(d) // the creator's reference
    return placed
  }

  /** Writes collected pages into an allocation: sources in coalesced runs, the rest zeroed. */
  private fill (d: Devmem, copy: readonly number[], data: Payload | null): void {
    const n = d.npages
    const cursor = data === null ? null : new PayloadCursor(data)
    let i = 0
    while (i < n) {
      let j = i
      const copying = copy[i] === 1
      while (j < n && (copy[j] === 1) === copying) j++
      if (copying) {
        if (cursor === null) throw svmError('EINVAL', 'collected pages without their data')
        cursor.read(this.vram.span(d.pfn + i, j - i), 0, (j - i) * PAGE_SIZE)
      } else {
        for (let k = i; k < j; k++) this.vram.zero(d.pfn + k)
      }
      i = j
    }
  }

  private countIn (placed: number, job?: JobStats): void {
    if (placed === 0) return
    this.counters.migratedToDevice += placed * PAGE_SIZE
    this.counters.migrations.systemToDevice++
    if (job !== undefined) job.migratedToDevice += placed * PAGE_SIZE
  }

  // ------------------------------------------------------------ to RAM

  /**
   * The CPU fault on a device page (dev_pagemap_ops.migrate_to_ram): migrate
   * the allocation-sized window around the address, clipped to the VMA, back
   * to system memory. Within the timeslice, asks the CPU to retry later.
   */
  async migrateToRam (req: { pid: number, addr: number, pfn: number, vmaStart: number, vmaEnd: number }): Promise<{ retryAfterMs: number }> {
    const d = this.devmemOf(req.pfn)
    if (d === undefined || this.pageLive[req.pfn] !== 1) return { retryAfterMs: 0 }
    const now = Date.now()
    if (now < d.timesliceExpiration) return { retryAfterMs: Math.ceil(d.timesliceExpiration - now) }
    const start = Math.max(alignDown(req.addr, d.bytes), req.vmaStart)
    const end = Math.min(alignDown(req.addr, d.bytes) + d.bytes, req.vmaEnd)
    await this.migrateWindowToRam(req.pid, start, end, d.pfn, d.pfn + d.npages)
    return { retryAfterMs: 0 }
  }

  /**
   * migrate_vma to system memory of this GPU's pages with pfn in [pfnLo,
   * pfnHi) inside [start, end) of pid; optionally fused with the following
   * hmm_range_fault. Returns its outcome (null when not asked for).
   */
  async migrateWindowToRam (pid: number, start: number, end: number, pfnLo: number, pfnHi: number, fault?: FaultAfter, job?: JobStats): Promise<StepOutcome | null> {
    const self = this.selfInvalidate?.(pid, start, end) ?? null
    const send = async (ids: number[]): Promise<ToRam> => await this.port.collectToRam({ pid, start, end, pfnLo, pfnHi, selfNotifiers: ids })
    const r = self === null ? await send([]) : await self.around(send)
    if (r.session === null) return null
    return await this.copyOut(r.session, r.pfns, job, fault)
  }

  /**
   * drm_pagemap_evict_to_ram: every page of the allocation back to system
   * memory, up to three attempts; EBUSY if some page could not be taken.
   */
  async evictToRam (d: Devmem, job?: JobStats): Promise<void> {
    if (d.evicting) throw svmError('EBUSY', `allocation ${d.id} is already being evicted`)
    d.evicting = true
    try {
      for (let attempt = 0; attempt < 3 && !d.released; attempt++) {
        const live: number[] = []
        for (let p = d.pfn; p < d.pfn + d.npages; p++) if (this.pageLive[p] === 1) live.push(p)
        if (live.length === 0) break
        const r = await this.port.collectDevicePfns(live)
        if (r.session !== null) await this.copyOut(r.session, r.pfns, job)
      }
    } finally {
      d.evicting = false
    }
    if (!d.released && d.refs > 0) {
      let live = 0
      for (let p = d.pfn; p < d.pfn + d.npages; p++) live += this.pageLive[p] as number
      if (live > 0) throw svmError('EBUSY', `allocation ${d.id} still has ${live} pages in use`)
    }
    this.counters.evictions++
  }

  /** Copies collected device pages out with the commit, then frees them. */
  private async copyOut (session: number, pfns: readonly number[], job?: JobStats, fault?: FaultAfter): Promise<StepOutcome | null> {
    // One view per run of pages next to each other in a 2 MiB chunk.
    const chunks: Uint8Array[] = []
    let i = 0
    while (i < pfns.length) {
      const first = pfns[i] as number
      let j = i + 1
      while (j < pfns.length && pfns[j] === first + (j - i) && ((first + (j - i)) & (PAGES_PER_2M - 1)) !== 0) j++
      chunks.push(this.vram.readSpan(first, j - i))
      i = j
    }
    let pages: StepOutcome | null
    try {
      pages = await this.port.commitToRam(session, chunks, fault)
    } catch (err) {
      const orphans = await this.port.abort(session).catch(() => [])
      this.freePages(orphans)
      throw err
    }
    this.freePages(pfns)
    this.counters.migratedToSystem += pfns.length * PAGE_SIZE
    this.counters.migrations.deviceToSystem++
    if (job !== undefined) job.migratedToSystem += pfns.length * PAGE_SIZE
    return pages
  }

  /** Releases every allocation (device teardown). */
  dropAll (): void {
    for (const d of [...this.devmems.values()]) {
      for (let p = d.pfn; p < d.pfn + d.npages; p++) this.pageLive[p] = 0
      d.refs = 1
      this.put(d)
    }
  }
}

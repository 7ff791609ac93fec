/**
 * migrate_vma_setup / migrate_vma_pages / migrate_vma_finalize and
 * migrate_device_pfns (mm/migrate_device.c), split across the wire: the
 * coordinator collects and locks the source pages and later installs the
 * destination pages; the GPU between the two allocates VRAM and copies.
 *
 * To device (SELECT_SYSTEM, the destination's owner): the window must lie
 * in one anonymous VMA; system pages and never-touched pages are collected.
 * All or nothing: a page already in the destination's VRAM, in another
 * device's, poisoned or locked by another migration makes it fail with EBUSY
 * before anything changes, unless every page is already there ('equal').
 *
 * To RAM (SELECT_DEVICE_PRIVATE): the pages of one GPU whose pfn lies in a
 * given allocation are collected; the GPU sends their bytes with the commit.
 * By pfn (eviction): every mapping of the given device pages, in any process.
 *
 * Collecting invalidates (MIGRATE, with owner) every notifier over the window
 * and, for pages other processes share (after fork), their notifiers too.
 */
import { svmError } from '../../../shared/errors.js'
import { PAGE_SIZE } from '../../../shared/units.js'
import { deviceGpu, deviceId, devicePfn } from '../../../shared/svm/page-id.js'
import type { Payload } from '../../../shared/transport/payload.js'
import { PayloadCursor } from '../../../shared/transport/payload.js'
import type { Mm, MmContext } from './mm.js'
import { type Invalidation, type SelfInvalidated } from './notifiers.js'
import { DEVICE, MIGRATION, NONE, PTE_WRITE, SYSTEM, ZERO, isWritable, kindOf } from './pte.js'
import type { MigrationSession } from './migration-session.js'
import { PROT_WRITE } from './vma.js'
import { SystemMemory } from './system-memory.js'

// ---------------------------------------------------------------- to device

export type ToDeviceOutcome =
  | { status: 'equal' }
  | {
    status: 'collected'
    session: MigrationSession
    /** Per slot: 1 = copy the source page (in data, in order), 0 = zero-fill. */
    copy: number[]
    /** Views of the source frames, one per copied slot, locked until commit. */
    data: Uint8Array[]
  }

type Verdict = 'ok' | 'equal' | string

function judgeToDevice (mm: Mm, startVpn: number, n: number, gpu: number): Verdict {
  let onDest = 0
  for (let i = 0; i < n; i++) {
    const pte = mm.pt.pte(startVpn + i)
    switch (kindOf(pte)) {
      case NONE:
      case ZERO:
      case SYSTEM:
        break
      case DEVICE:
        if (deviceGpu(mm.pt.pfn(startVpn + i)) !== gpu) return 'a page is in another device\'s memory'
        onDest++
        break
      case MIGRATION:
        return 'a page is locked by another migration'
      default:
        return 'a page was lost with its GPU'
    }
  }
  if (onDest === n) return 'equal'
  if (onDest > 0) return 'some pages are already in this device\'s memory'
  return 'ok'
}

export async function collectToDevice (
  mm: Mm,
  start: number,
  end: number,
  gpu: number,
  owner: number | null,
  self?: SelfInvalidated
): Promise<ToDeviceOutcome> {
  const ctx = mm.ctx
  return await mm.lock.read(async () => {
    const vma = mm.vmas.find(start)
    if (vma === undefined) throw svmError('ENOENT', `migrate: no mapping at 0x${start.toString(16)}`)
    if (end > vma.end) throw svmError('EINVAL', 'migrate: window spans more than one mapping')
    if (vma.shm !== null) throw svmError('EBUSY', 'migrate: shared mappings are not anonymous memory')
    const startVpn = start / PAGE_SIZE
    const n = (end - start) / PAGE_SIZE
    let verdict = judgeToDevice(mm, startVpn, n, gpu)
    if (verdict === 'equal') return { status: 'equal' }
    if (verdict !== 'ok') throw svmError('EBUSY', `migrate_to_devmem: ${verdict}`)

    const invs: Invalidation[] = [await mm.notifiers.begin(start, end, 'migrate', owner, self)]
    try {
      await invalidateSharers(mm, startVpn, n, SYSTEM, invs)
      verdict = judgeToDevice(mm, startVpn, n, gpu)
      if (verdict === 'equal') return { status: 'equal' }
      if (verdict !== 'ok') throw svmError('EBUSY', `migrate_to_devmem: ${verdict}`)

      const session = ctx.sessions.create(gpu, 'to_device', n)
      const copy: number[] = new Array(n)
      const data: Uint8Array[] = []
      const system = mm.phys.system
      // Sources as few views as possible: frames next to each other in a slab share one.
      let runStart = -1
      let runLen = 0
      const flush = (): void => {
        if (runLen > 0) data.push(system.viewRun(runStart, runLen))
        runLen = 0
      }
      for (let i = 0; i < n; i++) {
        const vpn = startVpn + i
        const pte = mm.pt.pte(vpn)
        const pfn = mm.pt.pfn(vpn)
        session.srcPte[i] = pte
        session.srcPfn[i] = pfn
        if (kindOf(pte) === SYSTEM) {
          system.pin(pfn)
          if (system.rmap.count(pfn) === 1) {
            // Only this process maps it, at this page: no rmap walk needed.
            mm.pt.set(vpn, MIGRATION, session.id)
            system.rmap.remove(pfn, mm.pid, vpn)
            session.addMapping(mm.pid, vpn, i)
          } else {
            lockAllMappings(ctx, session, i, system.rmap.mappings(pfn), (p, v) => { system.rmap.remove(pfn, p, v) })
          }
          copy[i] = 1
          if (runLen > 0 && SystemMemory.adjacent(runStart + runLen - 1, pfn)) {
            runLen++
          } else {
            flush()
            runStart = pfn
            runLen = 1
          }
        } else {
          mm.pt.set(vpn, MIGRATION, session.id)
          session.addMapping(mm.pid, vpn, i)
          copy[i] = 0
        }
      }
      flush()
      armDeadline(ctx, session)
      return { status: 'collected', session, copy, data }
    } finally {
      for (const inv of invs) inv.end()
    }
  })
}

/**
 * migrate_vma_pages + finalize: device pages go in where the session still
 * holds the PTE. The destination is one allocation: slot i gets device pfn
 * dst + i.
 */
export function commitToDevice (ctx: MmContext, session: MigrationSession, dst: number, keepSources = false): number[] {
  if (session.state !== 'open') throw svmError('EBUSY', `migration ${session.id} was already ${session.state}`)
  const counts = session.mappingsPerSlot()
  const placed = new Uint8Array(session.slots)
  forEachHeld(ctx, session, (mm, pid, vpn, slot) => {
    const src = session.srcPte[slot] as number
    let writable: boolean
    if (kindOf(src) === SYSTEM) {
      writable = isWritable(src)
    } else {
      const vma = mm.vmas.find(vpn * PAGE_SIZE)
      writable = vma !== undefined && (vma.prot & PROT_WRITE) !== 0
    }
    writable &&= counts[slot] === 1
    const id = deviceId(session.gpu, dst + slot)
    const pte = DEVICE | (writable ? PTE_WRITE : 0)
    mm.pt.set(vpn, pte, id)
    mm.phys.map(pte, id, pid, vpn)
    placed[slot] = 1
  })
  if (!keepSources) releaseSources(ctx, session)
  finish(ctx, session, 'committed')
  const failed: number[] = []
  for (let i = 0; i < session.slots; i++) if (placed[i] === 0) failed.push(i)
  return failed
}

// ---------------------------------------------------------------- to RAM

export interface ToRamOutcome {
  session: MigrationSession | null
  /** Per collected slot: index of its page in the window (or in the pfn list). */
  index: number[]
  /** Per collected slot: the device pfn. */
  pfns: number[]
}

function collectable (mm: Mm, vpn: number, gpu: number, pfnLo: number, pfnHi: number): boolean {
  const pte = mm.pt.pte(vpn)
  if (kindOf(pte) !== DEVICE) return false
  const id = mm.pt.pfn(vpn)
  const p = devicePfn(id)
  return deviceGpu(id) === gpu && p >= pfnLo && p < pfnHi
}

/** migrate_vma_setup(SELECT_DEVICE_PRIVATE) for the CPU fault path (migrate_to_ram). */
export async function collectToRam (
  mm: Mm,
  start: number,
  end: number,
  gpu: number,
  pfnLo: number,
  pfnHi: number,
  owner: number | null,
  self?: SelfInvalidated
): Promise<ToRamOutcome> {
  const none: ToRamOutcome = { session: null, index: [], pfns: [] }
  const ctx = mm.ctx
  return await mm.lock.read(async () => {
    const vma = mm.vmas.find(start)
    if (vma === undefined || end > vma.end) return none
    const startVpn = start / PAGE_SIZE
    const n = (end - start) / PAGE_SIZE
    const any = (): boolean => {
      for (let i = 0; i < n; i++) if (collectable(mm, startVpn + i, gpu, pfnLo, pfnHi)) return true
      return false
    }
    if (!any()) return none
    const invs: Invalidation[] = [await mm.notifiers.begin(start, end, 'migrate', owner, self)]
    try {
      await invalidateSharers(mm, startVpn, n, DEVICE, invs)
      const index: number[] = []
      for (let i = 0; i < n; i++) if (collectable(mm, startVpn + i, gpu, pfnLo, pfnHi)) index.push(i)
      if (index.length === 0) return none
      const session = ctx.sessions.create(gpu, 'to_ram', index.length)
      const pfns = lockDevicePages(ctx, session, index.map((i) => ({ gpu, pfn: devicePfn(mm.pt.pfn(startVpn + i)), pte: mm.pt.pte(startVpn + i) })))
      armDeadline(ctx, session)
      return { session, index, pfns }
    } finally {
      for (const inv of invs) inv.end()
    }
  })
}

/**
 * migrate_device_pfns (eviction, evict_to_ram): collects the given device
 * pages wherever they are mapped, without any mmap lock, invalidating every
 * process that maps one.
 */
export async function collectDevicePfns (ctx: MmContext, gpu: number, pfns: readonly number[], owner: number | null): Promise<ToRamOutcome> {
  const spans = new Map<number, Array<[number, number]>>()
  for (const pfn of pfns) {
    const m = ctx.phys.deviceMappings(gpu, pfn)
    for (let k = 0; k < m.length; k += 2) addSpan(spans, m[k] as number, m[k + 1] as number)
  }
  if (spans.size === 0) return { session: null, index: [], pfns: [] }
  const invs: Invalidation[] = []
  try {
    for (const [pid, list] of spans) {
      const mm = ctx.mms.get(pid)
      if (mm === undefined) continue
      for (const [lo, hi] of list) invs.push(await mm.notifiers.begin(lo * PAGE_SIZE, hi * PAGE_SIZE, 'migrate', owner))
    }
    const index: number[] = []
    const pages: Array<{ gpu: number, pfn: number, pte: number }> = []
    pfns.forEach((pfn, i) => {
      const m = ctx.phys.deviceMappings(gpu, pfn)
      if (m.length === 0) return
      const mm = ctx.mms.get(m[0] as number)
      if (mm === undefined) return
      index.push(i)
      pages.push({ gpu, pfn, pte: mm.pt.pte(m[1] as number) })
    })
    if (index.length === 0) return { session: null, index: [], pfns: [] }
    const session = ctx.sessions.create(gpu, 'to_ram', index.length)
    const locked = lockDevicePages(ctx, session, pages)
    armDeadline(ctx, session)
    return { session, index, pfns: locked }
  } finally {
    for (const inv of invs) inv.end()
  }
}

/** Finalize to RAM: one page of data per slot, in slot order. */
export function commitToRam (ctx: MmContext, session: MigrationSession, data: Payload | null): void {
  if (session.state !== 'open') throw svmError('EBUSY', `migration ${session.id} was already ${session.state}`)
  if (data === null || data.length !== session.slots * PAGE_SIZE) {
    throw svmError('EINVAL', `migration ${session.id} needs ${session.slots} pages of data`)
  }
  const counts = session.mappingsPerSlot()
  const system = ctx.phys.system
  const frames = new Int32Array(session.slots).fill(-1)
  const cursor = new PayloadCursor(data)
  const skip = new Uint8Array(PAGE_SIZE)
  try {
    for (let slot = 0; slot < session.slots; slot++) {
      if (counts[slot] === 0) {
        cursor.read(skip, 0, PAGE_SIZE)
        continue
      }
      const f = system.allocDirty()
      frames[slot] = f
      cursor.read(system.view(f), 0, PAGE_SIZE)
    }
  } catch (err) {
    for (const f of frames) if (f >= 0) system.releaseIfUnused(f)
    abortSession(ctx, session)
    throw err
  }
  forEachHeld(ctx, session, (mm, pid, vpn, slot) => {
    const f = frames[slot] as number
    if (f < 0) return
    const writable = isWritable(session.srcPte[slot] as number) && counts[slot] === 1
    const pte = SYSTEM | (writable ? PTE_WRITE : 0)
    mm.pt.set(vpn, pte, f)
    mm.phys.map(pte, f, pid, vpn)
  })
  // A frame whose mappings all vanished meanwhile was never mapped: give it back.
  for (const f of frames) if (f >= 0) system.releaseIfUnused(f)
  finish(ctx, session, 'committed')
}

// ---------------------------------------------------------------- abort

/**
 * Puts every source back where the session still holds the PTE. Returns the
 * device pages of a to-RAM session that nothing maps any more (its GPU frees
 * them).
 */
export function abortSession (ctx: MmContext, session: MigrationSession): number[] {
  if (session.state !== 'open') return []
  const counts = session.mappingsPerSlot()
  const restored = new Uint8Array(session.slots)
  forEachHeld(ctx, session, (mm, pid, vpn, slot) => {
    let pte = session.srcPte[slot] as number
    if (counts[slot] !== 1) pte &= ~PTE_WRITE
    const pfn = session.srcPfn[slot] as number
    mm.pt.set(vpn, pte, pfn)
    mm.phys.map(pte, pfn, pid, vpn)
    restored[slot] = 1
  })
  const orphans: number[] = []
  if (session.direction === 'to_device') {
    releaseSources(ctx, session)
  } else {
    for (let slot = 0; slot < session.slots; slot++) {
      if (restored[slot] === 0) orphans.push(devicePfn(session.srcPfn[slot] as number))
    }
  }
  finish(ctx, session, 'aborted')
  return orphans
}

// ---------------------------------------------------------------- helpers

/** Calls fn for every PTE that still holds this session's migration entry. */
function forEachHeld (ctx: MmContext, session: MigrationSession, fn: (mm: Mm, pid: number, vpn: number, slot: number) => void): void {
  let mm: Mm | undefined
  session.forEachMapping((pid, vpn, slot) => {
    if (mm === undefined || mm.pid !== pid) mm = ctx.mms.get(pid)
    if (mm === undefined || kindOf(mm.pt.pte(vpn)) !== MIGRATION || mm.pt.pfn(vpn) !== session.id) return
    fn(mm, pid, vpn, slot)
  })
}


/** Replaces every mapping (flattened pid, vpn pairs) of one page with this session's entry. */
function lockAllMappings (ctx: MmContext, session: MigrationSession, slot: number, maps: readonly number[], unrmap: (pid: number, vpn: number) => void): void {
  for (let k = 0; k < maps.length; k += 2) {
    const pid = maps[k] as number
    const vpn = maps[k + 1] as number
    const mm = ctx.mms.get(pid)
    if (mm === undefined) continue
    mm.pt.set(vpn, MIGRATION, session.id)
    unrmap(pid, vpn)
    session.addMapping(pid, vpn, slot)
  }
}

function lockDevicePages (ctx: MmContext, session: MigrationSession, pages: Array<{ gpu: number, pfn: number, pte: number }>): number[] {
  const out: number[] = []
  pages.forEach((p, slot) => {
    const id = deviceId(p.gpu, p.pfn)
    session.srcPte[slot] = p.pte
    session.srcPfn[slot] = id
    const rmap = ctx.phys.deviceRmap(p.gpu)
    lockAllMappings(ctx, session, slot, rmap.count(p.pfn) === 1 ? rmap.first(p.pfn) : rmap.mappings(p.pfn), (pid, vpn) => { rmap.remove(p.pfn, pid, vpn) })
    out.push(p.pfn)
  })
  return out
}

/**
 * Pages that other processes map too (shared after fork) move for all of
 * them, so those processes' notifiers are invalidated as well (try_to_migrate).
 */
async function invalidateSharers (mm: Mm, startVpn: number, n: number, kind: number, invs: Invalidation[]): Promise<void> {
  const ctx = mm.ctx
  const spans = new Map<number, Array<[number, number]>>()
  for (let i = 0; i < n; i++) {
    const vpn = startVpn + i
    const pte = mm.pt.pte(vpn)
    if (kindOf(pte) !== kind) continue
    const id = mm.pt.pfn(vpn)
    if (ctx.phys.mapcount(pte, id) <= 1) continue
    const maps = kind === SYSTEM ? ctx.phys.system.rmap.mappings(id) : ctx.phys.deviceMappings(deviceGpu(id), devicePfn(id))
    for (let k = 0; k < maps.length; k += 2) {
      if (maps[k] !== mm.pid) addSpan(spans, maps[k] as number, maps[k + 1] as number)
    }
  }
  for (const [pid, list] of spans) {
    const other = ctx.mms.get(pid)
    if (other === undefined) continue
    for (const [lo, hi] of list) invs.push(await other.notifiers.begin(lo * PAGE_SIZE, hi * PAGE_SIZE, 'clear', null))
  }
}

/** Accumulates per-process runs of virtual pages. */
function addSpan (spans: Map<number, Array<[number, number]>>, pid: number, vpn: number): void {
  let list = spans.get(pid)
  if (list === undefined) {
    list = []
    spans.set(pid, list)
  }
  const last = list[list.length - 1]
  if (last !== undefined && last[1] === vpn) last[1] = vpn + 1
  else list.push([vpn, vpn + 1])
}

/** Unpins a committed to-device session's source frames (after commitToDevice with keepSources). */
export function releaseSources (ctx: MmContext, session: MigrationSession): void {
  if (session.direction !== 'to_device') return
  const system = ctx.phys.system
  for (let slot = 0; slot < session.slots; slot++) {
    if (kindOf(session.srcPte[slot] as number) === SYSTEM) system.unpin(session.srcPfn[slot] as number)
  }
}

function finish (ctx: MmContext, session: MigrationSession, state: 'committed' | 'aborted'): void {
  ctx.sessions.close(session)
  session.finish(state)
}

function armDeadline (ctx: MmContext, session: MigrationSession): void {
  session.timer = setTimeout(() => {
    if (session.state !== 'open') return
    ctx.log.warn({ session: session.id, gpu: session.gpu }, 'migration not finished by its deadline; aborting it')
    const orphans = abortSession(ctx, session)
    if (orphans.length > 0 && !ctx.links.isLost(session.gpu)) {
      ctx.links.freeDevicePages(session.gpu, orphans).catch(() => {})
    }
  }, ctx.config.migrationDeadlineMs)
  session.timer.unref?.()
}

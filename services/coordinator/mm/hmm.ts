/**
 * hmm_range_fault (mm/hmm.c) and the CPU page-fault handling it leans on.
 *
 * Walks [start, end) under the mmap read lock and yields one entry per page
 * (page-id.ts encoding). With `fault`, pages are made present the way a CPU
 * fault would: a never-touched anonymous page maps the zero page on a read and
 * a fresh frame on a write, a write to a shared (copy-on-write) or zero page
 * copies it after a CLEAR invalidation, a device-private page of another
 * owner is first migrated back to RAM by its GPU (migrate_to_ram; the lock is
 * dropped while it works and the walk restarts), and a page locked by a
 * migration in flight is waited for. Device-private pages of the caller's
 * owner are returned in place and never migrated.
 *
 * Errors are the kernel's: no VMA or no read permission -> EFAULT, write
 * fault on a VMA without write -> EPERM, a poisoned page -> EIO, and EBUSY
 * when it cannot finish within HMM_RANGE_DEFAULT_TIMEOUT.
 *
 * The caller's `use` runs synchronously, still under the lock, with entries
 * that are exactly current: nothing can change between the walk and it.
 */
import { hasCode, svmError } from '../../../shared/errors.js'
import { PAGE_SIZE } from '../../../shared/units.js'
import { HMM_INVALID, deviceGpu, devicePfn, hmmEncode } from '../../../shared/svm/page-id.js'
import { sleep } from '../../../shared/util/deadline.js'
import type { Mm } from './mm.js'
import type { Notifier } from './notifiers.js'
import { FreedDevicePages } from './physical.js'
import { DEVICE, MIGRATION, NONE, POISON, PTE_WRITE, SYSTEM, ZERO, isWritable, kindOf } from './pte.js'
import { ZERO_FRAME } from './system-memory.js'
import { PROT_READ, PROT_WRITE, type Vma } from './vma.js'

export interface FaultOptions {
  start: number
  end: number
  /** Make pages present (REQ_FAULT); without it, report what is there. */
  fault: boolean
  /** Require write access (REQ_FAULT | REQ_WRITE). */
  write: boolean
  /** Device-private owner whose pages count as valid in place; null = none (CPU, range_evict). */
  owner: number | null
  /** For GPU callers: read_begin before and read_retry after the walk. */
  notifier?: Notifier | undefined
  /**
   * CPU reads leave never-touched pages unpopulated (they read as zeros)
   * rather than mapping the zero page.
   */
  populateOnRead?: boolean
  timeoutMs: number
  /**
   * Check the whole span is mapped with the needed permission before touching
   * anything, failing with EFAULT (the CPU access path: a bad access changes
   * nothing). GPU callers walk as the kernel does.
   */
  precheck?: boolean
  /** Error code when the timeout passes (kernel: EBUSY). */
  timeoutCode?: 'EBUSY' | 'ETIMEDOUT'
}

export interface FaultResult {
  /** One entry per page (HMM_INVALID where not valid without a fault). */
  entries: number[]
  /** The notifier sequence the entries are valid for. */
  seq: number
}

type Pending =
  | { kind: 'cow', vpns: number[] }
  | { kind: 'wait', sessions: number[] }
  | { kind: 'device', requests: Array<{ gpu: number, pfn: number, addr: number, vma: Vma }> }

const RETRY = Symbol('retry')

export async function faultRange<T> (mm: Mm, opts: FaultOptions, use: (r: FaultResult) => T): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  const code = opts.timeoutCode ?? 'EBUSY'
  for (;;) {
    if (mm.dead) throw svmError('EFAULT', `process ${mm.pid} has exited`)
    const remaining = deadline - Date.now()
    if (remaining <= 0) throw svmError(code, `hmm_range_fault [0x${opts.start.toString(16)}, 0x${opts.end.toString(16)}) did not settle in ${opts.timeoutMs} ms`)
    const seq = opts.notifier !== undefined ? await opts.notifier.readBegin() : 0
    let pending: Pending | null = null
    const out = await mm.lock.read(async () => {
      const walked = walk(mm, opts)
      if ('pending' in walked) {
        if (walked.pending.kind === 'cow') {
          await breakCow(mm, walked.pending.vpns)
          return RETRY
        }
        pending = walked.pending
        return RETRY
      }
      if (opts.notifier !== undefined && opts.notifier.readRetry(seq)) return RETRY
      return use({ entries: walked.entries, seq })
    }, remaining).catch((err: unknown) => {
      if (hasCode(err, 'ETIMEDOUT')) throw svmError(code, `hmm_range_fault: mmap lock not available in ${opts.timeoutMs} ms`)
      throw err
    })
    if (out !== RETRY) return out as T
    if (pending !== null) await settle(mm, pending, deadline)
  }
}

function precheck (mm: Mm, opts: FaultOptions): void {
  const need = opts.write ? PROT_WRITE : PROT_READ
  let at = opts.start
  for (const v of mm.vmas.overlapping(opts.start, opts.end)) {
    if (v.start > at || (v.prot & need) === 0) break
    at = v.end
  }
  if (at < opts.end) {
    throw svmError('EFAULT', `no ${opts.write ? 'writable' : 'readable'} mapping at 0x${at.toString(16)}`)
  }
}

function walk (mm: Mm, opts: FaultOptions): { entries: number[] } | { pending: Pending } {
  if (opts.precheck === true) precheck(mm, opts)
  const startVpn = opts.start / PAGE_SIZE
  const n = (opts.end - opts.start) / PAGE_SIZE
  const entries: number[] = new Array(n)
  const phys = mm.phys
  const pt = mm.pt
  let cow: number[] | null = null
  let waits: number[] | null = null
  let device: Array<{ gpu: number, pfn: number, addr: number, vma: Vma }> | null = null
  let vma: Vma | undefined
  for (let i = 0; i < n; i++) {
    const vpn = startVpn + i
    const addr = vpn * PAGE_SIZE
    if (vma === undefined || addr >= vma.end) vma = mm.vmas.find(addr)
    if (vma === undefined || (vma.prot & PROT_READ) === 0) {
      if (opts.fault) throw svmError('EFAULT', `no readable mapping at 0x${addr.toString(16)}`)
      entries[i] = HMM_INVALID
      continue
    }
    const vmaWrite = (vma.prot & PROT_WRITE) !== 0
    if (opts.fault && opts.write && !vmaWrite) throw svmError('EPERM', `write fault on read-only mapping at 0x${addr.toString(16)}`)
    let pte = pt.pte(vpn)
    let pfn = pt.pfn(vpn)
    let kind = kindOf(pte)
    if (kind === NONE) {
      if (vma.shm !== null) {
        const allocate = opts.fault && (opts.write || opts.populateOnRead !== false)
        const f = vma.shm.frame(vma.pgoff + (addr - vma.start) / PAGE_SIZE, allocate)
        if (f !== undefined) {
          pte = SYSTEM | (vmaWrite ? PTE_WRITE : 0)
          pfn = f
          mm.install(vpn, pte, pfn)
          kind = SYSTEM
        }
      } else if (opts.fault && opts.write) {
        pfn = phys.system.alloc()
        pte = SYSTEM | PTE_WRITE
        mm.install(vpn, pte, pfn)
        kind = SYSTEM
      } else if (opts.fault && opts.populateOnRead !== false) {
        pte = ZERO
        pfn = ZERO_FRAME
        pt.set(vpn, pte, pfn)
        kind = ZERO
      }
      if (kind === NONE) {
        entries[i] = opts.fault ? hmmEncode(ZERO_FRAME, false, false) : HMM_INVALID
        continue
      }
    }
    switch (kind) {
      case ZERO:
        if (opts.fault && opts.write) {
          (cow ??= []).push(vpn)
          entries[i] = HMM_INVALID
        } else {
          entries[i] = hmmEncode(ZERO_FRAME, false, false)
        }
        break
      case SYSTEM: {
        let w = isWritable(pte)
        if (!w && vmaWrite && opts.fault && opts.write) {
          if (vma.shm !== null || phys.system.rmap.count(pfn) === 1) {
            pt.setKind(vpn, pte | PTE_WRITE) // wp_page_reuse: sole owner, no copy
            w = true
          } else {
            (cow ??= []).push(vpn)
            entries[i] = HMM_INVALID
            break
          }
        }
        entries[i] = hmmEncode(pfn, w && vmaWrite, false)
        break
      }
      case DEVICE: {
        const gpu = deviceGpu(pfn)
        const mine = opts.owner !== null && mm.ctx.links.ownerOf(gpu) === opts.owner
        const w = isWritable(pte) && vmaWrite
        // A read-only (COW-shared after fork) device page cannot take a write in
        // place: it goes back to RAM and is copied there (see README).
        if (mine && (!opts.write || w || !opts.fault)) {
          entries[i] = hmmEncode(pfn, w, true)
        } else if (opts.fault) {
          (device ??= []).push({ gpu, pfn: devicePfn(pfn), addr, vma })
          entries[i] = HMM_INVALID
        } else {
          entries[i] = HMM_INVALID
        }
        break
      }
      case MIGRATION:
        if (opts.fault) (waits ??= []).push(pfn)
        entries[i] = HMM_INVALID
        break
      case POISON:
        if (opts.fault) throw svmError('EIO', `page at 0x${addr.toString(16)} was lost with its GPU`)
        entries[i] = HMM_INVALID
        break
    }
  }
  if (cow !== null) return { pending: { kind: 'cow', vpns: cow } }
  if (waits !== null) return { pending: { kind: 'wait', sessions: [...new Set(waits)] } }
  if (device !== null) return { pending: { kind: 'device', requests: firstPerRun(device) } }
  return { entries }
}

/** One migrate_to_ram request per run of consecutive pages of one GPU. */
function firstPerRun (pages: Array<{ gpu: number, pfn: number, addr: number, vma: Vma }>): typeof pages {
  const out: typeof pages = []
  let last: (typeof pages)[number] | undefined
  for (const p of pages) {
    if (last === undefined || p.gpu !== last.gpu || p.addr !== last.addr + PAGE_SIZE) out.push(p)
    last = p
  }
  return out
}

/**
 * Copy-on-write (wp_page_copy): invalidate the pages, then give each a
 * private copy. Runs under the caller's read lock.
 */
async function breakCow (mm: Mm, vpns: number[]): Promise<void> {
  const lo = vpns[0] as number
  const hi = (vpns[vpns.length - 1] as number) + 1
  const inv = await mm.notifiers.begin(lo * PAGE_SIZE, hi * PAGE_SIZE, 'clear', null)
  const freed = new FreedDevicePages()
  const system = mm.phys.system
  try {
    for (const vpn of vpns) {
      const pte = mm.pt.pte(vpn)
      const kind = kindOf(pte)
      if (kind === ZERO) {
        mm.replace(vpn, SYSTEM | PTE_WRITE, system.alloc(), freed)
      } else if (kind === SYSTEM && !isWritable(pte)) {
        const old = mm.pt.pfn(vpn)
        if (system.rmap.count(old) === 1) {
          mm.pt.setKind(vpn, pte | PTE_WRITE)
        } else {
          const copy = system.allocDirty()
          system.view(copy).set(system.view(old))
          mm.replace(vpn, SYSTEM | PTE_WRITE, copy, freed)
        }
      }
    }
  } finally {
    inv.end()
  }
  await mm.ctx.freeDevicePages(freed)
}

/** Work that must happen without the lock: GPU migrations back to RAM, waits on sessions. */
async function settle (mm: Mm, pending: Pending, deadline: number): Promise<void> {
  const remaining = Math.max(1, deadline - Date.now())
  if (pending.kind === 'wait') {
    const waits = pending.sessions.map((id) => mm.ctx.sessions.get(id)?.done ?? Promise.resolve())
    await Promise.race([Promise.all(waits), sleep(remaining)])
    return
  }
  if (pending.kind === 'device') {
    const replies = await Promise.all(pending.requests.map(async (r) => {
      try {
        return await mm.ctx.links.migrateToRam(r.gpu, {
          pid: mm.pid, addr: r.addr, pfn: r.pfn, vmaStart: r.vma.start, vmaEnd: r.vma.end
        })
      } catch (err) {
        mm.ctx.log.debug({ err, gpu: r.gpu }, 'migrate_to_ram failed; the walk will see the outcome')
        return { retryAfterMs: 1 }
      }
    }))
    const wait = Math.max(0, ...replies.map((r) => r.retryAfterMs))
    if (wait > 0) await sleep(Math.min(wait, remaining))
  }
}

/**
 * drm_gpusvm_check_pages: would a no-fault hmm_range_fault find every page
 * of [start, end) valid for this owner? (Used by chunk selection.)
 */
export function pagesPresent (mm: Mm, start: number, end: number, owner: number | null): boolean {
  let vma: Vma | undefined
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    if (vma === undefined || addr >= vma.end) vma = mm.vmas.find(addr)
    if (vma === undefined || (vma.prot & PROT_READ) === 0) return false
    const vpn = addr / PAGE_SIZE
    const kind = kindOf(mm.pt.pte(vpn))
    if (kind === ZERO || kind === SYSTEM) continue
    if (kind === DEVICE && owner !== null && mm.ctx.links.ownerOf(deviceGpu(mm.pt.pfn(vpn))) === owner) continue
    return false
  }
  return true
}

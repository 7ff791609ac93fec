/**
 * One simulated process's memory (struct mm_struct): its VMAs, CPU page
 * table, MMU interval notifiers and mmap lock. The operations live beside it,
 * one file per family (map-ops, fork, cpu-access, hmm, migrate), as mm/ does;
 * this file holds the state and the PTE primitives they share, which keep the
 * reverse maps and migration sessions right on every change.
 */
import { RwLock } from '../../../shared/util/rw-lock.js'
import { svmError } from '../../../shared/errors.js'
import { type Log, silentLog } from '../../../shared/util/log.js'
import { PAGE_SIZE } from '../../../shared/units.js'
import type { GpuLinks } from './gpu-links.js'
import { Notifiers } from './notifiers.js'
import { PageTable } from './page-table.js'
import { FreedDevicePages, PhysicalMemory } from './physical.js'
import { DEVICE, MIGRATION, NONE, SYSTEM, kindOf } from './pte.js'
import { SessionRegistry } from './migration-session.js'
import { VmaList } from './vma.js'

export interface MmConfig {
  /** HMM_RANGE_DEFAULT_TIMEOUT: hmm_range_fault gives up with EBUSY after this. */
  hmmTimeoutMs: number
  /** A GPU must commit or abort a migration within this, else it is aborted. */
  migrationDeadlineMs: number
  /** A CPU access waiting on migrations or a GPU's migrate_to_ram gives up after this. */
  cpuFaultDeadlineMs: number
}

export const DEFAULT_MM_CONFIG: MmConfig = {
  hmmTimeoutMs: 1000,
  migrationDeadlineMs: 10_000,
  cpuFaultDeadlineMs: 30_000
}

/** State shared by every mm of the coordinator. */
export class MmContext {
  readonly mms = new Map<number, Mm>()
  readonly sessions = new SessionRegistry()
  readonly config: MmConfig
  readonly log: Log

  constructor (readonly phys: PhysicalMemory, readonly links: GpuLinks, config: Partial<MmConfig> = {}, log: Log = silentLog) {
    this.config = { ...DEFAULT_MM_CONFIG, ...config }
    this.log = log
  }

  mm (pid: number): Mm {
    const mm = this.mms.get(pid)
    if (mm === undefined || mm.dead) throw svmError('EFAULT', `process ${pid} has no address space`)
    return mm
  }

  /** Hands device pages nobody maps any more back to their GPUs, and waits. */
  async freeDevicePages (freed: FreedDevicePages): Promise<void> {
    if (freed.empty) return
    const waits: Array<Promise<void>> = []
    for (const [gpu, pfns] of freed.byGpu) {
      if (this.links.isLost(gpu)) continue
      waits.push(this.links.freeDevicePages(gpu, pfns))
    }
    await Promise.all(waits)
  }
}

export class Mm {
  readonly vmas = new VmaList()
  readonly pt = new PageTable()
  readonly lock = new RwLock()
  readonly notifiers: Notifiers
  dead = false

  constructor (readonly ctx: MmContext, readonly pid: number) {
    this.notifiers = new Notifiers(pid, ctx.links)
  }

  get phys (): PhysicalMemory {
    return this.ctx.phys
  }

  /** Installs a PTE in an empty slot and records the mapping. */
  install (vpn: number, pte: number, pfn: number): void {
    this.pt.set(vpn, pte, pfn)
    this.phys.map(pte, pfn, this.pid, vpn)
  }

  /** Clears a PTE, dropping whatever it held (frame, device page, session lock). */
  zap (vpn: number, freed: FreedDevicePages): void {
    const pte = this.pt.pte(vpn)
    if (pte === NONE) return
    const pfn = this.pt.pfn(vpn)
    this.pt.set(vpn, NONE, 0)
    this.release(pte, pfn, vpn, freed)
  }

  /** Replaces a PTE (e.g. copy-on-write); the old one is released. */
  replace (vpn: number, pte: number, pfn: number, freed: FreedDevicePages): void {
    const oldPte = this.pt.pte(vpn)
    const oldPfn = this.pt.pfn(vpn)
    this.pt.set(vpn, pte, pfn)
    this.phys.map(pte, pfn, this.pid, vpn)
    if (oldPte !== NONE) this.release(oldPte, oldPfn, vpn, freed)
  }

  /** Zaps every PTE in [start, end). */
  zapRange (start: number, end: number, freed: FreedDevicePages): void {
    this.pt.forEachPresent(start / PAGE_SIZE, end / PAGE_SIZE, (vpn) => { this.zap(vpn, freed) })
  }

  private release (pte: number, pfn: number, vpn: number, freed: FreedDevicePages): void {
    const kind = kindOf(pte)
    if (kind === SYSTEM || kind === DEVICE) {
      this.phys.unmap(pte, pfn, this.pid, vpn, freed)
    } else if (kind === MIGRATION) {
      this.ctx.sessions.get(pfn)?.dropMapping(this.pid, vpn)
    }
  }
}

/**
 * A migration in flight (the state between migrate_vma_setup and
 * migrate_vma_finalize, or migrate_device_pfns and finalize).
 *
 * Collecting replaces every PTE that maps a source page with a MIGRATION
 * entry naming the session, in every process that maps it (the rmap walk of
 * try_to_migrate). The session remembers each source (its old PTE) and each
 * (pid, vpn) it locked. The GPU doing the copy then commits (new pages go in
 * where MIGRATION entries are still in place) or aborts (sources go back).
 * Page-table operations that meet a MIGRATION entry keep the session informed:
 * munmap drops the mapping, mremap moves it, fork adds the child's copy.
 * Nothing holds the mmap lock while the GPU copies; a deadline aborts a
 * session whose GPU never comes back.
 */
import { deferred, type Deferred } from '../../../shared/util/deadline.js'

export type Direction = 'to_device' | 'to_ram'

const VPN_SPAN = 2 ** 36

export function mappingKey (pid: number, vpn: number): number {
  return pid * VPN_SPAN + vpn
}

export function keyPid (key: number): number {
  return Math.floor(key / VPN_SPAN)
}

export function keyVpn (key: number): number {
  return key % VPN_SPAN
}

export class MigrationSession {
  /** Source PTE (kind byte incl. write bit) and pfn, per slot. */
  readonly srcPte: Uint8Array
  readonly srcPfn: Uint32Array
  /**
   * The common case, in typed arrays: one mapping per slot's page (its
   * process and virtual page). Further mappings (sharers after fork) are in
   * `extra`. Lookups by (pid, vpn) scan the slots: they only happen when
   * munmap, mremap or fork meets a migration entry.
   */
  readonly primaryPid: Int32Array
  readonly primaryVpn: Float64Array
  /** (pid, vpn) key -> slot for mappings beyond each slot's first. */
  readonly extra = new Map<number, number>()
  state: 'open' | 'committed' | 'aborted' = 'open'
  private readonly finished: Deferred<void> = deferred<void>()
  timer: ReturnType<typeof setTimeout> | undefined

  constructor (
    readonly id: number,
    readonly gpu: number,
    readonly direction: Direction,
    readonly slots: number
  ) {
    // One buffer for all per-slot arrays (8-byte fields first, for alignment).
    const buf = new ArrayBuffer(slots * (8 + 4 + 4 + 1))
    this.primaryVpn = new Float64Array(buf, 0, slots)
    this.srcPfn = new Uint32Array(buf, slots * 8, slots)
    this.primaryPid = new Int32Array(buf, slots * 12, slots).fill(-1)
    this.srcPte = new Uint8Array(buf, slots * 16, slots)
  }

  get done (): Promise<void> {
    return this.finished.promise
  }

  addMapping (pid: number, vpn: number, slot: number): void {
    if (this.primaryPid[slot] === -1) {
      this.primaryPid[slot] = pid
      this.primaryVpn[slot] = vpn
    } else {
      this.extra.set(mappingKey(pid, vpn), slot)
    }
  }

  private primarySlot (pid: number, vpn: number): number {
    for (let s = 0; s < this.slots; s++) if (this.primaryPid[s] === pid && this.primaryVpn[s] === vpn) return s
    return -1
  }

  slotOf (pid: number, vpn: number): number | undefined {
    const s = this.primarySlot(pid, vpn)
    return s >= 0 ? s : this.extra.get(mappingKey(pid, vpn))
  }

  dropMapping (pid: number, vpn: number): void {
    const s = this.primarySlot(pid, vpn)
    if (s >= 0) this.primaryPid[s] = -1
    else this.extra.delete(mappingKey(pid, vpn))
  }

  moveMapping (pid: number, oldVpn: number, newVpn: number): void {
    const s = this.primarySlot(pid, oldVpn)
    if (s >= 0) {
      this.primaryVpn[s] = newVpn
      return
    }
    const key = mappingKey(pid, oldVpn)
    const slot = this.extra.get(key)
    if (slot === undefined) return
    this.extra.delete(key)
    this.extra.set(mappingKey(pid, newVpn), slot)
  }

  /** Every (pid, vpn) the session holds, with its slot. */
  forEachMapping (fn: (pid: number, vpn: number, slot: number) => void): void {
    for (let s = 0; s < this.slots; s++) {
      const pid = this.primaryPid[s] as number
      if (pid !== -1) fn(pid, this.primaryVpn[s] as number, s)
    }
    for (const [key, slot] of this.extra) fn(keyPid(key), keyVpn(key), slot)
  }

  /** How many mappings each slot's page has in the session. */
  mappingsPerSlot (): Uint16Array {
    const counts = new Uint16Array(this.slots)
    for (let s = 0; s < this.slots; s++) counts[s] = this.primaryPid[s] === -1 ? 0 : 1
    for (const slot of this.extra.values()) counts[slot] = (counts[slot] as number) + 1
    return counts
  }

  /** Marks the session over and wakes everyone waiting on its entries. */
  finish (state: 'committed' | 'aborted'): void {
    this.state = state
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.finished.resolve()
  }
}

export class SessionRegistry {
  private nextId = 1
  private readonly open = new Map<number, MigrationSession>()

  create (gpu: number, direction: Direction, slots: number): MigrationSession {
    let id = this.nextId
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
    while (this.open.has(id)) id++
    const s = new MigrationSession(id, gpu, direction, slots)
    this.open.set(id, s)
    return s
  }

  get (id: number): MigrationSession | undefined {
    return this.open.get(id)
  }

  close (s: MigrationSession): void {
    this.open.delete(s.id)
  }

  ofGpu (gpu: number): MigrationSession[] {
    return [...this.open.values()].filter((s) => s.gpu === gpu)
  }

  get size (): number {
    return this.open.size
  }
}

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
  /** (pid, vpn) key -> slot, for every PTE this session locked. */
  readonly mappings = new Map<number, number>()
  state: 'open' | 'committed' | 'aborted' = 'open'
  private readonly finished: Deferred<void> = deferred<void>()
  timer: ReturnType<typeof setTimeout> | undefined

  constructor (
    readonly id: number,
    readonly gpu: number,
    readonly direction: Direction,
    readonly slots: number
  ) {
    this.srcPte = new Uint8Array(slots)
    this.srcPfn = new Uint32Array(slots)
  }

  get done (): Promise<void> {
    return this.finished.promise
  }

  addMapping (pid: number, vpn: number, slot: number): void {
    this.mappings.set(mappingKey(pid, vpn), slot)
  }

  slotOf (pid: number, vpn: number): number | undefined {
    return this.mappings.get(mappingKey(pid, vpn))
  }

  dropMapping (pid: number, vpn: number): void {
    this.mappings.delete(mappingKey(pid, vpn))
  }

  moveMapping (pid: number, oldVpn: number, newVpn: number): void {
    const key = mappingKey(pid, oldVpn)
    const slot = this.mappings.get(key)
    if (slot === undefined) return
    this.mappings.delete(key)
    this.mappings.set(mappingKey(pid, newVpn), slot)
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

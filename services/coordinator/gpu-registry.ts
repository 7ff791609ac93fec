/**
 * The coordinator's view of each configured GPU: its state (offline until
 * its process registers, online, lost), its owner group, and the control
 * connection to it. Owner groups follow the link topology (owners.ts).
 */
import type { RpcPeer } from '../../shared/protocol/rpc.js'
import type { CoordinatorMethods } from '../../shared/protocol/messages/coordinator.js'
import type { GpuMethods } from '../../shared/protocol/messages/gpu.js'
import { svmError } from '../../shared/errors.js'
import type { GpuSpec, LinkSpec, Topology } from './topology/topology.js'
import { OwnerGroups } from './topology/owners.js'

export type GpuState = 'offline' | 'online' | 'lost'
export type GpuPeer = RpcPeer<GpuMethods, CoordinatorMethods>

export class GpuEntry {
  state: GpuState = 'offline'
  owner: number | null = null
  peer: GpuPeer | null = null
  instance = ''
  p2pUrl = ''
  lostReason = ''
  /** Bumped on every (re)registration: a new process, new empty VRAM. */
  generation = 0

  constructor (readonly spec: GpuSpec) {}

  get id (): number {
    return this.spec.id
  }
}

export interface LinkState extends LinkSpec { up: boolean }

export class GpuRegistry {
  readonly entries = new Map<number, GpuEntry>()
  readonly links: LinkState[]
  readonly owners: OwnerGroups

  constructor (readonly topology: Topology) {
    for (const g of topology.gpus) this.entries.set(g.id, new GpuEntry(g))
    this.links = topology.links.map((l) => ({ ...l, up: true }))
    this.owners = new OwnerGroups((a, b) => this.linked(a, b))
  }

  get (id: number): GpuEntry {
    const e = this.entries.get(id)
    if (e === undefined) throw svmError('E_NOT_FOUND', `no GPU ${id}`)
    return e
  }

  has (id: number): boolean {
    return this.entries.has(id)
  }

  /** The entry, which must be online (ENODEV otherwise). */
  online (id: number): GpuEntry & { peer: GpuPeer } {
    const e = this.get(id)
    if (e.state !== 'online' || e.peer === null) throw svmError('ENODEV', `GPU ${id} is ${e.state}`)
    return e as GpuEntry & { peer: GpuPeer }
  }

  linked (a: number, b: number): boolean {
    return this.links.some((l) => l.up && ((l.a === a && l.b === b) || (l.a === b && l.b === a)))
  }

  ownerOf (id: number): number | null {
    const e = this.entries.get(id)
    return e !== undefined && e.state === 'online' ? e.owner : null
  }

  get allOnline (): boolean {
    for (const e of this.entries.values()) if (e.state !== 'online') return false
    return true
  }

  onlineEntries (): Array<GpuEntry & { peer: GpuPeer }> {
    return [...this.entries.values()].filter((e) => e.state === 'online' && e.peer !== null) as Array<GpuEntry & { peer: GpuPeer }>
  }
}

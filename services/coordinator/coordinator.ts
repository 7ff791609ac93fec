/**
 * The coordinator core: the simulated CPU side of the machine. It owns every
 * process's mm, system memory, the MMU notifiers, the GPU registry with its
 * owner groups, and the VM directory. It has no I/O of its own: GPU processes
 * reach it through Connections (WebSocket or in-memory) handed to attachGpu,
 * and the REST layer calls its methods.
 *
 * Loss of a GPU (a missed invalidation deadline, a dropped control
 * connection, an unanswered CPU-fault migration) is handled here: its pages
 * are poisoned, its notifiers dropped, its VMs orphaned, and every other
 * process and GPU carries on.
 */
import { svmError, hasCode } from '../../shared/errors.js'
import { RpcPeer } from '../../shared/protocol/rpc.js'
import { CoordinatorMethods } from '../../shared/protocol/messages/coordinator.js'
import { GpuMethods } from '../../shared/protocol/messages/gpu.js'
import type { Connection } from '../../shared/transport/types.js'
import { type Log, silentLog } from '../../shared/util/log.js'
import { PAGE_SIZE, alignDown, alignUp } from '../../shared/units.js'
import type { GpuInfo } from '../../shared/schemas/vm.js'
import { GpuRegistry, type GpuEntry, type GpuPeer } from './gpu-registry.js'
import type { Topology } from './topology/topology.js'
import type { GpuLinks, InvalidateEvent, MigrateToRamRequest } from './mm/gpu-links.js'
import { type MmConfig, Mm, MmContext } from './mm/mm.js'
import { PhysicalMemory } from './mm/physical.js'
import { poisonGpu } from './mm/poison.js'
import { serveSvm } from './svm-service.js'
import { VmRegistry, type VmEntry } from './vm-registry.js'
import { exitMm } from './mm/exit.js'
import { fork } from './mm/fork.js'
import { type Location, residency } from './mm/residency.js'

export interface CoordinatorOptions {
  topology: Topology
  /** Deadline for a GPU's invalidation acknowledgement (DESIGN: 5 s). */
  invalidateDeadlineMs?: number
  /** Deadline for forwarded commands and CPU-fault migrations. */
  commandTimeoutMs?: number
  mm?: Partial<MmConfig>
  systemMemoryBytes?: number
  log?: Log
}

export class Coordinator {
  readonly gpus: GpuRegistry
  readonly phys: PhysicalMemory
  readonly mmctx: MmContext
  readonly vms = new VmRegistry()
  readonly log: Log
  readonly invalidateDeadlineMs: number
  readonly commandTimeoutMs: number
  /** Poisoning in progress per lost GPU (a re-registration waits for it). */
  private readonly poisoning = new Map<number, Promise<unknown>>()
  private nextPid = 1
  private readonly peers = new Set<GpuPeer>()
  /** Counters for /metrics. */
  readonly stats = { malformedMessages: 0, gpusLost: 0, invalidations: 0 }

  constructor (opts: CoordinatorOptions) {
    this.log = opts.log ?? silentLog
    this.gpus = new GpuRegistry(opts.topology)
    this.invalidateDeadlineMs = opts.invalidateDeadlineMs ?? 5000
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 60_000
    this.phys = new PhysicalMemory(opts.systemMemoryBytes)
    this.mmctx = new MmContext(this.phys, this.links(), opts.mm, this.log.child({ component: 'mm' }))
  }

  // ------------------------------------------------------------ GPU links

  private links (): GpuLinks {
    return {
      invalidate: async (gpu: number, pid: number, events: InvalidateEvent[]) => {
        const e = this.gpus.entries.get(gpu)
        if (e === undefined || e.state !== 'online' || e.peer === null) return
        this.stats.invalidations += events.length
        try {
          await e.peer.request('mmu.invalidate', { pid, events }, { timeoutMs: this.invalidateDeadlineMs })
        } catch (err) {
          this.gpuFailed(e, err, 'invalidation acknowledgement')
        }
      },
      migrateToRam: async (gpu: number, req: MigrateToRamRequest) => {
        const e = this.gpus.entries.get(gpu)
        if (e === undefined || e.state !== 'online' || e.peer === null) return { retryAfterMs: 0 }
        try {
          const r = await e.peer.request('pagemap.migrate_to_ram', req, { timeoutMs: this.commandTimeoutMs })
          return r.result
        } catch (err) {
          this.gpuFailed(e, err, 'migrate_to_ram')
          throw err
        }
      },
      freeDevicePages: async (gpu: number, pfns: number[]) => {
        const e = this.gpus.entries.get(gpu)
        if (e === undefined || e.state !== 'online' || e.peer === null) return
        try {
          await e.peer.request('pagemap.free_pages', { pfns }, { timeoutMs: this.invalidateDeadlineMs })
        } catch (err) {
          this.gpuFailed(e, err, 'freeing device pages')
        }
      },
      ownerOf: (gpu: number) => this.gpus.ownerOf(gpu),
      isLost: (gpu: number) => this.gpus.entries.get(gpu)?.state === 'lost'
    }
  }

  /** A GPU that times out or drops its connection is lost; other errors are its own bugs, logged. */
  private gpuFailed (e: GpuEntry, err: unknown, what: string): void {
    if (hasCode(err, 'ETIMEDOUT', 'ENOLINK')) {
      this.declareLost(e.id, `${what}: ${(err as Error).message}`)
    } else {
      this.log.warn({ err, gpu: e.id }, `gpu${e.id} failed ${what}`)
    }
  }

  declareLost (gpu: number, reason: string): void {
    const e = this.gpus.entries.get(gpu)
    if (e === undefined || e.state !== 'online') return
    this.log.error({ gpu, reason }, `gpu${gpu} declared lost`)
    this.stats.gpusLost++
    const peer = e.peer
    e.state = 'lost'
    e.lostReason = reason
    e.peer = null
    e.owner = null
    this.gpus.owners.release(gpu)
    for (const mm of this.mmctx.mms.values()) mm.notifiers.removeGpu(gpu)
    peer?.close('declared lost')
    const p = poisonGpu(this.mmctx, gpu).then(
      (n) => { this.log.warn({ gpu, pages: n }, `poisoned ${n} pages of lost gpu${gpu}`) },
      (err: unknown) => { this.log.error({ err, gpu }, 'poisoning failed') }
    ).finally(() => { if (this.poisoning.get(gpu) === p) this.poisoning.delete(gpu) })
    this.poisoning.set(gpu, p)
    this.broadcastTopology()
  }

  /** Resolves once every lost GPU's pages are poisoned (tests, shutdown). */
  async settled (): Promise<void> {
    await Promise.all([...this.poisoning.values()])
  }

  // ------------------------------------------------------------ GPU attach

  /** Takes a new control connection from a GPU process; it must register first. */
  attachGpu (conn: Connection): GpuPeer {
    const peer: GpuPeer = new RpcPeer(conn, {
      outMethods: GpuMethods,
      inMethods: CoordinatorMethods,
      log: this.log.child({ component: 'gpu-link', peer: conn.label }),
      defaultTimeoutMs: this.commandTimeoutMs
    })
    this.peers.add(peer)
    let entry: GpuEntry | null = null
    const gpuOf = (): number => {
      if (entry === null || entry.peer !== peer || entry.state !== 'online') {
        throw svmError('EPERM', 'this connection is not a registered GPU')
      }
      return entry.id
    }
    peer.handle('gpu.register', async (p) => {
      if (entry !== null) throw svmError('EINVAL', 'already registered')
      const e = this.gpus.entries.get(p.gpu)
      if (e === undefined) throw svmError('E_NOT_FOUND', `gpu${p.gpu} is not in the topology`)
      if (p.vramBytes !== e.spec.vram) throw svmError('EINVAL', `gpu${p.gpu} has ${e.spec.vram} bytes of VRAM in the topology, not ${p.vramBytes}`)
      if (e.state === 'online') this.declareLost(e.id, 'a new process registered in its place')
      await this.poisoning.get(e.id)
      if (peer.closed) throw svmError('ENOLINK', 'connection closed during registration')
      entry = e
      e.state = 'online'
      e.peer = peer
      e.instance = p.instance
      e.p2pUrl = p.p2pUrl ?? ''
      e.lostReason = ''
      e.generation++
      e.owner = this.gpus.owners.acquire(e.id)
      this.log.info({ gpu: e.id, owner: e.owner, instance: p.instance }, `gpu${e.id} online`)
      this.broadcastTopology(e.id)
      return { result: { owner: e.owner, invalidateDeadlineMs: this.invalidateDeadlineMs, peers: this.peerList() } }
    })
    serveSvm(peer, gpuOf, { mmctx: this.mmctx, ownerOf: (g) => this.gpus.ownerOf(g) })
    peer.onClose((reason) => {
      this.peers.delete(peer)
      this.stats.malformedMessages += peer.rejected
      if (entry !== null && entry.peer === peer) this.declareLost(entry.id, `control connection closed (${reason})`)
    })
    return peer
  }

  private peerList (): Array<{ gpu: number, p2pUrl: string, owner: number | null }> {
    return this.gpus.onlineEntries().map((e) => ({ gpu: e.id, p2pUrl: e.p2pUrl, owner: e.owner }))
  }

  private broadcastTopology (except?: number): void {
    const peers = this.peerList()
    for (const e of this.gpus.onlineEntries()) {
      if (e.id === except) continue
      e.peer.notify('topology.update', { owner: e.owner, peers })
    }
  }

  /** Malformed messages rejected so far, over every GPU connection. */
  get malformedMessages (): number {
    let n = this.stats.malformedMessages
    for (const p of this.peers) n += p.rejected
    return n
  }

  // ------------------------------------------------------------ processes

  process (pid: number): Mm {
    const mm = this.mmctx.mms.get(pid)
    if (mm === undefined || mm.dead) throw svmError('E_NOT_FOUND', `no process ${pid}`)
    return mm
  }

  createProcess (): number {
    const pid = this.nextPid++
    this.mmctx.mms.set(pid, new Mm(this.mmctx, pid))
    return pid
  }

  async forkProcess (pid: number): Promise<number> {
    const parent = this.process(pid)
    const child = this.nextPid++
    await fork(parent, child)
    return child
  }

  /** Exit: every page, VRAM allocation and GPU VM of the process is freed. */
  async deleteProcess (pid: number): Promise<void> {
    const mm = this.process(pid)
    await Promise.all(this.vms.ofProcess(pid).map((v) => this.deleteVm(v.vm).catch(() => {})))
    await exitMm(mm)
  }

  get processCount (): number {
    return this.mmctx.mms.size
  }

  // ------------------------------------------------------------ VMs

  async createVm (gpu: number, pid: number): Promise<number> {
    this.process(pid)
    const e = this.gpus.online(gpu)
    const v = this.vms.allocate(gpu, pid, e.generation)
    try {
      await e.peer.request('vm.create', { vm: v.vm, pid }, { timeoutMs: this.commandTimeoutMs })
    } catch (err) {
      this.vms.remove(v.vm)
      throw err
    }
    return v.vm
  }

  async deleteVm (vm: number): Promise<void> {
    const v = this.vms.get(vm)
    this.vms.remove(vm)
    const e = this.gpus.entries.get(v.gpu)
    if (e?.state === 'online' && e.peer !== null && e.generation === v.generation) {
      await e.peer.request('vm.delete', { vm }, { timeoutMs: this.commandTimeoutMs }).catch((err: unknown) => {
        if (!hasCode(err, 'ENODEV', 'ENOLINK', 'E_NOT_FOUND')) throw err
      })
    }
  }

  /** The VM and the peer of its GPU, which must still be the process that created it. */
  vmTarget (vm: number): { v: VmEntry, peer: GpuPeer } {
    const v = this.vms.get(vm)
    const e = this.gpus.get(v.gpu)
    if (e.state !== 'online' || e.peer === null || e.generation !== v.generation) {
      throw svmError('ENODEV', `VM ${vm} was on gpu${v.gpu}, which is ${e.state === 'online' ? 'a new process now' : e.state}`)
    }
    return { v, peer: e.peer }
  }

  /** The location holding most of [start, end) (ranges' `location`). */
  dominantLocation (pid: number, start: number, end: number): Location {
    const mm = this.mmctx.mms.get(pid)
    if (mm === undefined) return 'unpopulated'
    const totals = new Map<Location, number>()
    for (const r of residency(mm, alignDown(start, PAGE_SIZE), alignUp(end, PAGE_SIZE))) {
      totals.set(r.location, (totals.get(r.location) ?? 0) + r.length)
    }
    let best: Location = 'unpopulated'
    let bestBytes = 0
    for (const [loc, bytes] of totals) {
      if (loc !== 'unpopulated' && bytes > bestBytes) {
        best = loc
        bestBytes = bytes
      }
    }
    return best
  }

  // ------------------------------------------------------------ topology

  async gpuInfo (gpu: number, timeoutMs = 2000): Promise<GpuInfo | null> {
    const e = this.gpus.get(gpu)
    if (e.state !== 'online' || e.peer === null) return null
    try {
      return (await e.peer.request('gpu.info', {}, { timeoutMs })).result
    } catch (err) {
      this.log.debug({ err, gpu }, 'gpu.info failed')
      return null
    }
  }

  async close (): Promise<void> {
    for (const p of this.peers) p.close('coordinator shutting down')
    await this.settled()
  }
}

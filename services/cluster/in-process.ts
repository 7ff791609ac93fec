/**
 * A whole emulated machine in one process: the coordinator and every GPU
 * device, connected by the in-memory transport. With a seed, deliveries are
 * delayed and interleaved deterministically (a failing seed replays); without
 * one they are immediate. Tests, fuzzing and the in-process benchmark use it;
 * the REST layer can sit on top of its coordinator exactly as on a real one.
 */
import { Coordinator, type CoordinatorOptions } from '../coordinator/coordinator.js'
import { defaultTopology, type Topology } from '../coordinator/topology/topology.js'
import { Scheduler } from '../../shared/transport/scheduler.js'
import { createMemoryPair, type MemoryConnection } from '../../shared/transport/memory.js'
import { type Log, silentLog } from '../../shared/util/log.js'
import { attachToCoordinator, type AttachedGpu } from '../gpu/serve.js'

export interface InProcessOptions extends Partial<Omit<CoordinatorOptions, 'topology'>> {
  topology?: Topology
  /** Seeded delivery delays (omit for immediate delivery). */
  seed?: number
  maxDelay?: number
  /** Verify that no sender changes page data it handed to the transport. */
  checkChunks?: boolean
  /** Round-trip message headers through JSON as on the wire (default true; false is the fast path). */
  serialize?: boolean
  log?: Log
}

export interface InProcessGpu extends AttachedGpu {
  conn: MemoryConnection
}

export class InProcessCluster {
  readonly gpus = new Map<number, InProcessGpu>()

  private constructor (readonly coordinator: Coordinator, readonly scheduler: Scheduler, private readonly opts: InProcessOptions) {}

  static async start (opts: InProcessOptions = {}): Promise<InProcessCluster> {
    const topology = opts.topology ?? defaultTopology(1, 64 * 1024 * 1024)
    const coordinator = new Coordinator({ ...opts, topology, log: opts.log ?? silentLog })
    const scheduler = new Scheduler({ ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.maxDelay !== undefined ? { maxDelay: opts.maxDelay } : {}) })
    const cluster = new InProcessCluster(coordinator, scheduler, opts)
    for (const g of topology.gpus) await cluster.startGpu(g.id)
    return cluster
  }

  /** Starts (or restarts, with empty VRAM) the process of one GPU. */
  async startGpu (id: number): Promise<InProcessGpu> {
    const spec = this.coordinator.gpus.get(id).spec
    const [gpuSide, coordSide] = createMemoryPair(this.scheduler, `gpu${id}`, 'coordinator', { checkChunks: this.opts.checkChunks ?? false, serialize: this.opts.serialize ?? true })
    this.coordinator.attachGpu(coordSide)
    const attached = await attachToCoordinator(gpuSide, { gpu: id, vramBytes: spec.vram, log: (this.opts.log ?? silentLog).child({ gpu: id }) })
    const g = { ...attached, conn: gpuSide }
    this.gpus.set(id, g)
    return g
  }

  gpu (id: number): InProcessGpu {
    const g = this.gpus.get(id)
    if (g === undefined) throw new Error(`no gpu${id}`)
    return g
  }

  /** The GPU process dies: its connection drops. */
  kill (id: number): void {
    this.gpu(id).conn.close('killed')
    this.gpus.delete(id)
  }

  async close (): Promise<void> {
    for (const g of this.gpus.values()) g.conn.close('cluster closing')
    this.gpus.clear()
    await this.coordinator.close()
  }
}

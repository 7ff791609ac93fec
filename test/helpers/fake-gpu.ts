/**
 * A scripted test double of a GPU process, speaking the real protocol to a
 * coordinator: it registers, keeps a toy VRAM, records the invalidations it
 * is sent and acknowledges them (or, when told, never does), and answers
 * migrate_to_ram and free_pages. Tests drive the coordinator's GPU-facing
 * side through it, over the in-memory transport or a real WebSocket.
 */
import { RpcPeer } from '../../shared/protocol/rpc.js'
import { CoordinatorMethods } from '../../shared/protocol/messages/coordinator.js'
import { GpuMethods } from '../../shared/protocol/messages/gpu.js'
import type { Connection } from '../../shared/transport/types.js'
import type { CoordinatorPeer } from '../../services/gpu/coordinator-port.js'
import { copyFromPayload } from '../../shared/transport/payload.js'

export interface FakeInvalidation { pid: number, events: Array<{ notifier: number, start: number, end: number, event: string, owner: number | null, seq: number }> }

export class FakeGpu {
  readonly peer: CoordinatorPeer
  readonly invalidations: FakeInvalidation[] = []
  readonly freed: number[] = []
  readonly vram = new Map<number, Buffer>()
  /** 'ack' | 'hang' */
  mode: 'ack' | 'hang' = 'ack'
  ackDelayMs = 0
  owner: number | null = null

  constructor (readonly gpu: number, conn: Connection, readonly vramBytes = 64 * 1024 * 1024) {
    this.peer = new RpcPeer(conn, { outMethods: CoordinatorMethods, inMethods: GpuMethods, defaultTimeoutMs: 10_000 })
    this.peer.handle('mmu.invalidate', async (p) => {
      this.invalidations.push(p)
      if (this.mode === 'hang') await new Promise(() => {})
      if (this.ackDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.ackDelayMs))
      return { result: {} }
    })
    this.peer.handle('pagemap.free_pages', (p) => {
      this.freed.push(...p.pfns)
      for (const pfn of p.pfns) this.vram.delete(pfn)
      return { result: {} }
    })
    this.peer.handle('pagemap.migrate_to_ram', async (p) => {
      const out = (await this.peer.request('migrate.collect_to_ram', { pid: p.pid, start: p.vmaStart, end: p.vmaEnd, pfnLo: 0, pfnHi: 1 << 24, selfNotifiers: [] })).result
      if (out.session !== null) {
        const data = out.pfns.map((pfn) => this.vram.get(pfn) ?? Buffer.alloc(4096))
        await this.peer.request('migrate.commit_to_ram', { session: out.session, fault: null }, { data })
        for (const pfn of out.pfns) this.vram.delete(pfn)
      }
      return { result: { retryAfterMs: 0 } }
    })
    this.peer.handle('topology.update', (p) => { this.owner = p.owner; return { result: {} } })
    this.peer.handle('gpu.info', () => ({
      result: {
        vram: { total: this.vramBytes, used: this.vram.size * 4096, free: this.vramBytes - this.vram.size * 4096, largestFree: 0 },
        pagemap: { id: 1, refs: 0, state: 'active' as const },
        shrinker: { count: 0 },
        counters: { faults: 0, invalidations: this.invalidations.length, migratedToDevice: 0, migratedToSystem: 0, p2pBytes: 0, evictions: 0, migrations: { systemToDevice: 0, deviceToSystem: 0, peerDirect: 0, peerViaSystem: 0 } }
      }
    }))
  }

  async register (vramBytes = this.vramBytes): Promise<void> {
    const r = await this.peer.request('gpu.register', { gpu: this.gpu, vramBytes, instance: `fake-${this.gpu}` })
    this.owner = r.result.owner
  }

  /** Migrates [start, end) of pid to this fake's VRAM (pfns from `firstPfn`). */
  async migrateIn (pid: number, notifier: { id: number, start: number, end: number }, start: number, end: number, firstPfn: number): Promise<void> {
    const r = await this.peer.request('svm.range_prepare', {
      pid, notifier, locate: null, range: { start, end }, migrate: { selfNotifiers: [], reserve: null, faultOn: [] }, fault: null
    })
    const m = r.result.migrate
    if (m === null || m.outcome !== 'collected') throw new Error(`not collected: ${JSON.stringify(m)}`)
    const n = (end - start) / 4096
    let off = 0
    for (let i = 0; i < n; i++) {
      const page = Buffer.alloc(4096)
      if (m.collected.copy[i] === 1 && r.data !== null) {
        copyFromPayload(r.data, off, page, 0, 4096)
        off += 4096
      }
      this.vram.set(firstPfn + i, page)
    }
    await this.peer.request('migrate.commit_to_device', { session: m.collected.session, dst: firstPfn, fault: null })
  }
}

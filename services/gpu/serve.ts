/**
 * Binds a GpuDevice to its control connection: the coordinator's calls go to
 * the device, the device's CoordinatorPort goes over the same connection.
 * `attachToCoordinator` registers and returns once the GPU is online.
 */
import { randomUUID } from 'node:crypto'
import { RpcPeer } from '../../shared/protocol/rpc.js'
import { CoordinatorMethods } from '../../shared/protocol/messages/coordinator.js'
import { GpuMethods } from '../../shared/protocol/messages/gpu.js'
import type { Connection } from '../../shared/transport/types.js'
import { type Log, silentLog } from '../../shared/util/log.js'
import { type CoordinatorPeer, rpcCoordinatorPort } from './coordinator-port.js'
import { GpuDevice } from './gpu-device.js'

export function serveDevice (peer: CoordinatorPeer, dev: GpuDevice): void {
  peer.handle('mmu.invalidate', (p) => {
    dev.invalidate(p.pid, p.events)
    return { result: {} }
  })
  peer.handle('pagemap.migrate_to_ram', async (p) => ({ result: await dev.migrateToRam(p) }))
  peer.handle('pagemap.free_pages', (p) => {
    dev.freePages(p.pfns)
    return { result: {} }
  })
  peer.handle('topology.update', (p) => {
    dev.owner = p.owner
    return { result: {} }
  })
  peer.handle('vm.create', (p) => { dev.vmCreate(p.vm, p.pid); return { result: {} } })
  peer.handle('vm.delete', (p) => { dev.vmDelete(p.vm); return { result: {} } })
  peer.handle('vm.madvise', (p) => { dev.madvise(p.vm, p.advice); return { result: {} } })
  peer.handle('vm.attributes', (p) => ({ result: { runs: dev.attributes(p.vm, p.addr, p.length) } }))
  peer.handle('vm.prefetch', async (p) => ({ result: await dev.prefetch(p.vm, p.prefetch) }))
  peer.handle('vm.fault', async (p) => ({ result: await dev.fault(p.vm, p.fault) }))
  peer.handle('vm.fault_batch', async (p) => ({ result: await dev.faultBatch(p.vm, p.batch) }))
  peer.handle('vm.ranges', (p) => ({ result: { ranges: dev.ranges(p.vm) } }))
  peer.handle('vm.exec', async (p, data) => {
    const { reply, chunks } = await dev.exec(p.vm, p.ops, data)
    return { result: reply, data: chunks }
  })
  peer.handle('gpu.info', () => ({ result: dev.info() }))
  peer.handle('gpu.ping', () => ({ result: { ok: true } }))
}

export interface AttachOptions {
  gpu: number
  vramBytes: number
  p2pUrl?: string
  log?: Log
  timeoutMs?: number
}

export interface AttachedGpu {
  device: GpuDevice
  peer: CoordinatorPeer
  instance: string
}

export async function attachToCoordinator (conn: Connection, opts: AttachOptions): Promise<AttachedGpu> {
  const log = opts.log ?? silentLog
  const peer: CoordinatorPeer = new RpcPeer(conn, {
    outMethods: CoordinatorMethods,
    inMethods: GpuMethods,
    log: log.child({ component: 'coordinator-link' }),
    defaultTimeoutMs: opts.timeoutMs ?? 60_000
  })
  const device = new GpuDevice({ gpu: opts.gpu, vramBytes: opts.vramBytes, port: rpcCoordinatorPort(peer), log })
  serveDevice(peer, device)
  const instance = randomUUID().slice(0, 18)
  const r = await peer.request('gpu.register', {
    gpu: opts.gpu, vramBytes: opts.vramBytes, instance, ...(opts.p2pUrl !== undefined ? { p2pUrl: opts.p2pUrl } : {})
  })
  device.owner = r.result.owner
  return { device, peer, instance }
}

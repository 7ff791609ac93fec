/**
 * What a GPU asks of the coordinator (the CPU side), as an interface with
 * one RPC-backed implementation. The GPU's core code only sees this.
 */
import type { Static } from '@sinclair/typebox'
import type { RpcPeer } from '../../shared/protocol/rpc.js'
import {
  type CommitToDeviceParams, type CommitToDeviceResult, type CoordinatorMethods, type HmmParams,
  type Pages, type RangePrepareParams, type RangePrepareResult, type ToRamCollected
} from '../../shared/protocol/messages/coordinator.js'
import type { GpuMethods } from '../../shared/protocol/messages/gpu.js'
import type { Payload } from '../../shared/transport/payload.js'

export type ToRam = Static<typeof ToRamCollected>
export interface FaultAfter { pid: number, notifier: number, start: number, end: number, write: boolean }
export type StepOutcome = { ok: true, pages: Pages } | { ok: false, error: { code: string, message: string } }

export type CommitToDevice = Static<typeof CommitToDeviceResult>

export interface CoordinatorPort {
  rangePrepare: (p: RangePrepareParams, onReply?: (r: { result: RangePrepareResult, data: Payload | null }) => void) => Promise<{ result: RangePrepareResult, data: Payload | null }>
  hmmRangeFault: (p: Static<typeof HmmParams>) => Promise<Pages>
  commitToDevice: (p: Static<typeof CommitToDeviceParams>) => Promise<CommitToDevice>
  collectToRam: (p: { pid: number, start: number, end: number, pfnLo: number, pfnHi: number, selfNotifiers: number[] }) => Promise<ToRam>
  collectDevicePfns: (pfns: number[]) => Promise<ToRam>
  commitToRam: (session: number, data: Uint8Array[], fault?: FaultAfter) => Promise<StepOutcome | null>
  abort: (session: number) => Promise<number[]>
  dmaRead: (segs: number[]) => Promise<Payload>
  dmaWrite: (segs: number[], data: Uint8Array[]) => Promise<void>
  notifierRemove: (pid: number, ids: number[]) => void
  vmas: (pid: number, start: number, end: number) => Promise<Array<{ start: number, end: number, prot: string, shared: boolean }>>
}

export type CoordinatorPeer = RpcPeer<CoordinatorMethods, GpuMethods>

export function rpcCoordinatorPort (peer: CoordinatorPeer): CoordinatorPort {
  return {
    rangePrepare: async (p, onReply) => await peer.request('svm.range_prepare', p, onReply === undefined ? {} : { onReply: (r) => { onReply(r); return r } }),
    hmmRangeFault: async (p) => (await peer.request('svm.hmm_range_fault', p)).result,
    commitToDevice: async (p) => (await peer.request('migrate.commit_to_device', p)).result,
    collectToRam: async (p) => (await peer.request('migrate.collect_to_ram', p)).result,
    collectDevicePfns: async (pfns) => (await peer.request('migrate.collect_device_pfns', { pfns })).result,
    commitToRam: async (session, data, fault) => (await peer.request('migrate.commit_to_ram', { session, fault: fault ?? null }, { data })).result.pages,
    abort: async (session) => (await peer.request('migrate.abort', { session })).result.orphans,
    dmaRead: async (segs) => {
      const r = await peer.request('dma.read', { segs })
      return r.data ?? { length: 0, chunks: [] }
    },
    dmaWrite: async (segs, data) => { await peer.request('dma.write', { segs }, { data }) },
    vmas: async (pid, start, end) => (await peer.request('mm.vmas', { pid, start, end })).result.vmas,
    notifierRemove: (pid, ids) => {
      peer.request('mmu.notifier_remove', { pid, ids }).catch((err: unknown) => {
        peer.log.debug({ err }, 'notifier removal not acknowledged')
      })
    }
  }
}

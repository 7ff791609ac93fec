/**
 * Methods a GPU process serves to the coordinator: the mm's callbacks into
 * the driver (invalidation, the CPU fault's migrate_to_ram, freeing device
 * pages no PTE maps), topology updates, and the GPU-scoped REST commands the
 * coordinator forwards.
 */
import { Type } from '@sinclair/typebox'
import { Address, Bool, Closed, Count, Id } from '../../schemas/common.js'
import {
  AttributeRun, FaultBatchBody, FaultBatchResult, FaultBody, FaultResult, GpuInfo, MadviseBody,
  PrefetchBody, PrefetchResult, RangeInfo, WireExecOp, WireExecReply
} from '../../schemas/vm.js'

const MmuEvent = Type.Union(['unmap', 'clear', 'protection', 'migrate', 'release'].map((e) => Type.Literal(e)))

export const InvalidateEventSchema = Closed({
  notifier: Id,
  start: Address,
  end: Address,
  event: MmuEvent,
  owner: Type.Union([Type.Null(), Count]),
  seq: Count
})

const Vm = Id

export const GpuMethods = {
  'mmu.invalidate': { params: Closed({ pid: Id, events: Type.Array(InvalidateEventSchema) }), result: Closed({}) },
  'pagemap.migrate_to_ram': {
    params: Closed({ pid: Id, addr: Address, pfn: Count, vmaStart: Address, vmaEnd: Address }),
    result: Closed({ retryAfterMs: Count })
  },
  'pagemap.free_pages': { params: Closed({ pfns: Type.Array(Count) }), result: Closed({}) },
  'topology.update': {
    params: Closed({ owner: Type.Union([Type.Null(), Count]), peers: Type.Array(Closed({ gpu: Id, p2pUrl: Type.String(), owner: Type.Union([Type.Null(), Count]) })) }),
    result: Closed({})
  },
  'vm.create': { params: Closed({ vm: Vm, pid: Id }), result: Closed({}) },
  'vm.delete': { params: Closed({ vm: Vm }), result: Closed({}) },
  'vm.madvise': { params: Closed({ vm: Vm, advice: MadviseBody }), result: Closed({}) },
  'vm.attributes': { params: Closed({ vm: Vm, addr: Address, length: Count }), result: Closed({ runs: Type.Array(AttributeRun) }) },
  'vm.prefetch': { params: Closed({ vm: Vm, prefetch: PrefetchBody }), result: PrefetchResult },
  'vm.fault': { params: Closed({ vm: Vm, fault: FaultBody }), result: FaultResult },
  'vm.fault_batch': { params: Closed({ vm: Vm, batch: FaultBatchBody }), result: FaultBatchResult },
  'vm.ranges': { params: Closed({ vm: Vm }), result: Closed({ ranges: Type.Array(RangeInfo) }) },
  'vm.exec': { params: Closed({ vm: Vm, ops: Type.Array(WireExecOp) }), result: WireExecReply },
  'gpu.info': { params: Closed({}), result: GpuInfo },
  'gpu.ping': { params: Closed({}), result: Closed({ ok: Bool }) }
} as const

export type GpuMethods = typeof GpuMethods

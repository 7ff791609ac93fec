/**
 * The GPU process's core: one emulated device with its drm_pagemap (VRAM),
 * its GPU VMs (each a drm_gpusvm with a page table) and its counters. It
 * answers the coordinator's calls (MMU invalidation callbacks, the CPU
 * fault's migrate_to_ram, folio_free of device pages, and the forwarded VM
 * commands) and reaches the CPU side only through its CoordinatorPort. No
 * I/O here: the same object runs behind a WebSocket or the in-memory
 * transport.
 */
import { performance } from 'node:perf_hooks'
import { SvmError, svmError } from '../../shared/errors.js'
import { USER_SPACE_END, isPageAligned } from '../../shared/units.js'
import { type Log, silentLog } from '../../shared/util/log.js'
import type { Payload } from '../../shared/transport/payload.js'
import type {
  AttributeRun, FaultBatchBody, FaultBatchResult, FaultBody, FaultResult, GpuCounters, GpuInfo,
  MadviseBody, PrefetchBody, RangeInfo, WireExecOp, WireExecReply
} from '../../shared/schemas/vm.js'
import type { InvalidateEventSchema } from '../../shared/protocol/messages/gpu.js'
import type { Static } from '@sinclair/typebox'
import type { CoordinatorPort } from './coordinator-port.js'
import { newCounters, newJobStats } from './counters.js'
import { DrmPagemap } from './pagemap/drm-pagemap.js'
import type { SvmContext } from './svm/context.js'
import { handleFault } from './svm/fault-handler.js'
import { GpuVm, type MmuEvent } from './svm/gpu-vm.js'
import { SelfInvalidation } from './svm/self-invalidation.js'
import { prefetch } from './svm/prefetch.js'
import { GpuMemory } from './exec/gpu-memory.js'
import { runJob } from './exec/engine.js'

export interface GpuDeviceOptions {
  gpu: number
  vramBytes: number
  port: CoordinatorPort
  log?: Log
}

export class GpuDevice implements SvmContext {
  readonly gpu: number
  readonly port: CoordinatorPort
  readonly pagemap: DrmPagemap
  readonly counters: GpuCounters = newCounters()
  readonly log: Log
  readonly memory: GpuMemory
  owner: number | null = null
  private readonly vms = new Map<number, GpuVm>()
  private nextNotifierId = 1

  constructor (opts: GpuDeviceOptions) {
    this.gpu = opts.gpu
    this.port = opts.port
    this.log = opts.log ?? silentLog
    this.pagemap = new DrmPagemap(opts.gpu, opts.vramBytes, opts.port, this.counters, this.log.child({ component: 'pagemap' }),
      (pid, start, end) => this.selfInvalidate(pid, start, end))
    this.memory = new GpuMemory(this)
  }

  vm (id: number): GpuVm {
    const vm = this.vms.get(id)
    if (vm === undefined) throw svmError('E_NOT_FOUND', `no VM ${id} on gpu${this.gpu}`)
    return vm
  }

  get vmCount (): number {
    return this.vms.size
  }

  // ------------------------------------------------------------ mm callbacks

  /** MMU interval notifier callbacks for one process: synchronous, as the kernel's. */
  invalidate (pid: number, events: ReadonlyArray<Static<typeof InvalidateEventSchema>>): void {
    for (const ev of events) {
      for (const vm of this.vms.values()) {
        if (vm.pid !== pid) continue
        const n = vm.svm.notifiers.find((x) => x.id === ev.notifier)
        if (n === undefined) continue
        n.setSeq(ev.seq)
        const before = vm.invalidations
        vm.invalidate(n, ev.start, ev.end, ev.event as MmuEvent)
        this.counters.invalidations += vm.invalidations - before
      }
    }
  }

  async migrateToRam (req: { pid: number, addr: number, pfn: number, vmaStart: number, vmaEnd: number }): Promise<{ retryAfterMs: number }> {
    return await this.pagemap.migrateToRam(req)
  }

  selfInvalidate (pid: number, start: number, end: number): SelfInvalidation {
    return SelfInvalidation.window(this.vms.values(), pid, start, end, this.counters)
  }

  freePages (pfns: readonly number[]): void {
    this.pagemap.freePages(pfns)
  }

  // ------------------------------------------------------------ VM commands

  vmCreate (id: number, pid: number): void {
    if (this.vms.has(id)) throw svmError('EINVAL', `VM ${id} exists`)
    this.vms.set(id, new GpuVm(id, pid, () => this.nextNotifierId++))
  }

  vmDelete (id: number): void {
    const vm = this.vm(id)
    this.vms.delete(id)
    const notifiers = vm.close()
    if (notifiers.length > 0) this.port.notifierRemove(vm.pid, notifiers.map((n) => n.id))
  }

  madvise (id: number, a: MadviseBody): void {
    const vm = this.vm(id)
    if (!isPageAligned(a.addr) || !isPageAligned(a.length)) throw svmError('EINVAL', 'madvise address and length must be page aligned')
    if (a.addr + a.length > USER_SPACE_END) throw svmError('EINVAL', 'madvise beyond the mirrored space (2^47)')
    const changed = vm.attrs.apply(a.addr, a.addr + a.length, {
      ...(a.preferredLocation !== undefined ? { preferredLocation: a.preferredLocation } : {}),
      ...(a.atomic !== undefined ? { atomic: a.atomic } : {})
    })
    // A changed attribute zaps the PTEs it covers: the next fault re-places.
    for (const span of changed) {
      for (const r of vm.svm.rangesOverlapping(span.start, span.end)) vm.zap(r)
    }
  }

  attributes (id: number, addr: number, length: number): AttributeRun[] {
    const vm = this.vm(id)
    if (!isPageAligned(addr) || !isPageAligned(length)) throw svmError('EINVAL', 'address and length must be page aligned')
    return vm.attrs.runs(addr, addr + length).map((r) => ({ addr: r.addr, length: r.length, preferredLocation: r.preferredLocation, atomic: r.atomic }))
  }

  async prefetch (id: number, p: PrefetchBody): Promise<{ migratedBytes: number }> {
    return await prefetch(this, this.vm(id), p, newJobStats())
  }

  async fault (id: number, f: FaultBody): Promise<FaultResult> {
    const out = await handleFault(this, this.vm(id), f.addr, f.access, newJobStats())
    return { range: { start: out.range.start, end: out.range.end }, location: out.location, migrated: out.migrated }
  }

  /** Several injected faults, `concurrency` at a time, each with its service time. */
  async faultBatch (id: number, b: FaultBatchBody): Promise<FaultBatchResult> {
    const vm = this.vm(id)
    const results: FaultBatchResult['results'] = new Array(b.faults.length)
    let next = 0
    const t0 = performance.now()
    const worker = async (): Promise<void> => {
      while (next < b.faults.length) {
        const i = next++
        const f = b.faults[i] as FaultBody
        const s = performance.now()
        try {
          const out = await handleFault(this, vm, f.addr, f.access, newJobStats())
          results[i] = { ok: true, range: { start: out.range.start, end: out.range.end }, location: out.location, migrated: out.migrated, latencyUs: (performance.now() - s) * 1000 }
        } catch (err) {
          if (!(err instanceof SvmError)) throw err
          results[i] = { ok: false, code: err.code, message: err.message, latencyUs: (performance.now() - s) * 1000 }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(b.concurrency ?? 1, b.faults.length) }, worker))
    return { results, elapsedUs: (performance.now() - t0) * 1000 }
  }

  ranges (id: number): RangeInfo[] {
    const vm = this.vm(id)
    const out: RangeInfo[] = []
    vm.svm.forEachRange((r) => {
      out.push({
        start: r.start,
        end: r.end,
        location: vm.locationOf(r),
        bound: r.bound,
        flags: {
          migrateDevmem: r.migrateDevmem,
          unmapped: r.unmapped,
          partialUnmap: r.partialUnmap,
          hasDevmemPages: r.hasDevmemPages,
          hasDmaMapping: r.hasDmaMapping
        }
      })
    })
    return out
  }

  async exec (id: number, ops: readonly WireExecOp[], data: Payload | null): Promise<{ reply: WireExecReply, chunks: Uint8Array[] }> {
    return await runJob(this.memory, this.vm(id), ops, data)
  }

  info (): GpuInfo {
    let rangeRefs = 0
    for (const vm of this.vms.values()) vm.svm.forEachRange((r) => { if (r.dpagemap === this.gpu) rangeRefs++ })
    const refs = this.vms.size + this.pagemap.allocations + rangeRefs
    const b = this.pagemap.buddy
    return {
      vram: { total: b.pages * 4096, used: b.usedBytes, free: b.freeBytes, largestFree: b.largestFreeBytes },
      pagemap: { id: this.pagemap.id, refs, state: refs > 0 ? 'active' : 'inactive' },
      shrinker: { count: 0 },
      counters: structuredClone(this.counters)
    }
  }
}

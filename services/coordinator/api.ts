/**
 * The operations of the REST contract (DESIGN.md §2), in REST shapes but
 * without HTTP: the fastify routes are thin adapters over this, and tests
 * can drive it directly. Process and memory calls run on the coordinator's
 * mm; VM calls are forwarded to the GPU that holds the VM; a few (snapshot,
 * range locations) combine both.
 */
import { SvmError, svmError } from '../../shared/errors.js'
import { ADDRESS_LIMIT, PAGE_SIZE, USER_SPACE_END, isPageAligned } from '../../shared/units.js'
import type { Prot } from '../../shared/schemas/common.js'
import type {
  AttributeRun, ExecBody, ExecStats, FaultBatchBody, FaultBatchResult, FaultBody, FaultResult, GpuInfo,
  MadviseBody, PrefetchBody, RangeInfo, WireExecOp
} from '../../shared/schemas/vm.js'
import type { Coordinator } from './coordinator.js'
import type { GpuState } from './gpu-registry.js'
import { mmap, mprotect, mremap, munmap } from './mm/map-ops.js'
import { cpuRead, cpuWrite } from './mm/cpu-access.js'
import { residency, snapshot, type ResidencyRun, type SnapshotRun } from './mm/residency.js'
import { protFromName, protName } from './mm/vma.js'
import { copyFromPayload } from '../../shared/transport/payload.js'

export interface ExecResponse {
  results: Array<Record<string, unknown>>
  stats: ExecStats
}

function span (addr: number, length: number, what: string): void {
  if (!isPageAligned(addr) || !isPageAligned(length)) throw svmError('EINVAL', `${what}: address and length must be multiples of ${PAGE_SIZE}`)
  if (addr + length > ADDRESS_LIMIT) throw svmError('EINVAL', `${what}: span beyond 2^48`)
}

export class CoordinatorApi {
  constructor (readonly c: Coordinator) {}

  // ------------------------------------------------------------ processes

  createProcess (): { pid: number } {
    return { pid: this.c.createProcess() }
  }

  getProcess (pid: number): { pid: number, vmas: Array<{ addr: number, length: number, prot: Prot, shared: boolean }> } {
    const mm = this.c.process(pid)
    return { pid, vmas: mm.vmas.all.map((v) => ({ addr: v.start, length: v.end - v.start, prot: protName(v.prot), shared: v.shm !== null })) }
  }

  async deleteProcess (pid: number): Promise<void> {
    await this.c.deleteProcess(pid)
  }

  async fork (pid: number): Promise<{ pid: number }> {
    return { pid: await this.c.forkProcess(pid) }
  }

  async mmap (pid: number, b: { length: number, addr?: number | undefined, prot?: Prot | undefined, shared?: boolean | undefined }): Promise<{ addr: number }> {
    const mm = this.c.process(pid)
    return { addr: await mmap(mm, { length: b.length, addr: b.addr, prot: protFromName(b.prot ?? 'rw'), shared: b.shared ?? false }) }
  }

  async munmap (pid: number, b: { addr: number, length: number }): Promise<void> {
    await munmap(this.c.process(pid), b.addr, b.length)
  }

  async mremap (pid: number, b: { addr: number, oldLength: number, newLength: number, newAddr?: number | undefined, dontUnmap?: boolean | undefined }): Promise<{ addr: number }> {
    return { addr: await mremap(this.c.process(pid), b) }
  }

  async mprotect (pid: number, b: { addr: number, length: number, prot: Prot }): Promise<void> {
    await mprotect(this.c.process(pid), b.addr, b.length, protFromName(b.prot))
  }

  async writeMemory (pid: number, addr: number, data: Uint8Array): Promise<void> {
    const mm = this.c.process(pid)
    if (data.byteLength === 0) throw svmError('E_VALIDATION', 'empty body: nothing to write')
    if (addr + data.byteLength > USER_SPACE_END) throw svmError('EFAULT', 'write beyond user space')
    await cpuWrite(mm, addr, data)
  }

  async readMemory (pid: number, addr: number, length: number): Promise<Buffer> {
    const mm = this.c.process(pid)
    if (addr + length > USER_SPACE_END) throw svmError('EFAULT', 'read beyond user space')
    return await cpuRead(mm, addr, length)
  }

  residency (pid: number, addr: number, length: number): { runs: ResidencyRun[] } {
    const mm = this.c.process(pid)
    span(addr, length, 'residency')
    return { runs: residency(mm, addr, addr + length) }
  }

  // ------------------------------------------------------------ topology

  async topology (): Promise<{ gpus: Array<{ id: number, state: GpuState, owner: number | null, vram: { total: number, used: number } }>, links: Array<{ a: number, b: number, up: boolean, bandwidthGBps: number, latencyUs: number }> }> {
    const entries = [...this.c.gpus.entries.values()]
    const infos = await Promise.all(entries.map(async (e) => await this.c.gpuInfo(e.id, 1000)))
    return {
      gpus: entries.map((e, i) => ({
        id: e.id,
        state: e.state,
        owner: e.state === 'online' ? e.owner : null,
        vram: { total: e.spec.vram, used: infos[i]?.vram.used ?? 0 }
      })),
      links: this.c.gpus.links.map((l) => ({ a: l.a, b: l.b, up: l.up, bandwidthGBps: l.bandwidthGBps, latencyUs: l.latencyUs }))
    }
  }

  owners (): Array<{ owner: number, gpus: number[] }> {
    return this.c.gpus.owners.list().map((g) => ({ owner: g.owner, gpus: [...g.members].sort((a, b) => a - b) }))
  }

  async gpu (id: number): Promise<GpuInfo & { id: number, state: GpuState, owner: number | null }> {
    const e = this.c.gpus.get(id)
    const info = await this.c.gpuInfo(id, 5000)
    if (info === null) {
      if (e.state === 'online') throw svmError('ETIMEDOUT', `gpu${id} did not answer`)
      return {
        id,
        state: e.state,
        owner: null,
        vram: { total: e.spec.vram, used: 0, free: e.spec.vram, largestFree: e.spec.vram },
        pagemap: { id: 0, refs: 0, state: 'destroyed' },
        shrinker: { count: 0 },
        counters: { faults: 0, invalidations: 0, migratedToDevice: 0, migratedToSystem: 0, p2pBytes: 0, evictions: 0, migrations: { systemToDevice: 0, deviceToSystem: 0, peerDirect: 0, peerViaSystem: 0 } }
      }
    }
    return { id, state: e.state, owner: e.owner, ...info }
  }

  // ------------------------------------------------------------ VMs

  async createVm (b: { gpu: number, pid: number }): Promise<{ vm: number }> {
    return { vm: await this.c.createVm(b.gpu, b.pid) }
  }

  async deleteVm (vm: number): Promise<void> {
    await this.c.deleteVm(vm)
  }

  private checkVmSpan (addr: number, length: number, what: string): void {
    span(addr, length, what)
    if (addr + length > USER_SPACE_END) throw svmError('EINVAL', `${what}: the VM mirrors [0, 2^47)`)
  }

  /** A specific GPU named as a placement must exist, be up, and share the VM's owner group. */
  private checkPeer (vmGpu: number, target: number): void {
    const e = this.c.gpus.get(target)
    if (e.state !== 'online') throw svmError('ENODEV', `gpu${target} is ${e.state}`)
    const mine = this.c.gpus.ownerOf(vmGpu)
    if (target !== vmGpu && (mine === null || e.owner !== mine)) {
      throw svmError('ENOLINK', `gpu${target} is not in gpu${vmGpu}'s interconnect group`)
    }
  }

  async madvise (vm: number, b: MadviseBody): Promise<void> {
    const { v, peer } = this.c.vmTarget(vm)
    this.checkVmSpan(b.addr, b.length, 'madvise')
    const pl = b.preferredLocation
    if (pl !== undefined && typeof pl === 'object') this.checkPeer(v.gpu, pl.gpu)
    await peer.request('vm.madvise', { vm, advice: b })
  }

  async attributes (vm: number, addr: number, length: number): Promise<AttributeRun[]> {
    const { peer } = this.c.vmTarget(vm)
    this.checkVmSpan(addr, length, 'attributes')
    return (await peer.request('vm.attributes', { vm, addr, length })).result.runs
  }

  async prefetch (vm: number, b: PrefetchBody): Promise<{ migratedBytes: number }> {
    const { v, peer } = this.c.vmTarget(vm)
    this.checkVmSpan(b.addr, b.length, 'prefetch')
    if (typeof b.location === 'object') this.checkPeer(v.gpu, b.location.gpu)
    return (await peer.request('vm.prefetch', { vm, prefetch: b })).result
  }

  async fault (vm: number, b: FaultBody): Promise<FaultResult> {
    const { peer } = this.c.vmTarget(vm)
    if (b.addr >= USER_SPACE_END) throw svmError('EINVAL', 'the VM mirrors [0, 2^47)')
    return (await peer.request('vm.fault', { vm, fault: b })).result
  }

  async faultBatch (vm: number, b: FaultBatchBody): Promise<FaultBatchResult> {
    const { peer } = this.c.vmTarget(vm)
    if (b.faults.some((f) => f.addr >= USER_SPACE_END)) throw svmError('EINVAL', 'the VM mirrors [0, 2^47)')
    return (await peer.request('vm.fault_batch', { vm, batch: b })).result
  }

  snapshot (vm: number, addr: number, length: number): { runs: SnapshotRun[] } {
    const v = this.c.vms.get(vm)
    this.checkVmSpan(addr, length, 'snapshot')
    const mm = this.c.process(v.pid)
    return { runs: snapshot(mm, addr, addr + length, this.c.gpus.ownerOf(v.gpu)) }
  }

  async ranges (vm: number): Promise<RangeInfo[]> {
    const { v, peer } = this.c.vmTarget(vm)
    const ranges = (await peer.request('vm.ranges', { vm })).result.ranges
    return ranges.map((r) => ({ ...r, location: this.c.dominantLocation(v.pid, r.start, r.end) }))
  }

  async exec (vm: number, body: ExecBody): Promise<ExecResponse> {
    const { peer } = this.c.vmTarget(vm)
    const chunks: Uint8Array[] = []
    let at = 0
    const ops: WireExecOp[] = body.ops.map((op, opIndex) => {
      // The whole span an op touches must lie in the mirror, or the job is refused before any op runs.
      const outside = (addr: number, length: number): boolean => addr >= USER_SPACE_END || length > USER_SPACE_END - addr
      const mirrorOnly = (): SvmError => svmError('EINVAL', 'the VM mirrors [0, 2^47)', { opIndex })
      if (op.op === 'copy') {
        if (outside(op.src, op.length) || outside(op.dst, op.length)) throw mirrorOnly()
        return op
      }
      if (op.op !== 'write') {
        if (outside(op.addr, 'length' in op ? op.length : 4)) throw mirrorOnly()
        return op
      }
      const data = Buffer.from(op.data, 'base64')
      if (data.byteLength === 0 || data.toString('base64').replace(/=+$/, '') !== op.data.replace(/=+$/, '')) {
        throw svmError('E_VALIDATION', 'write data is not valid base64')
      }
      if (outside(op.addr, data.byteLength)) throw mirrorOnly()
      chunks.push(data)
      const w = { op: 'write' as const, addr: op.addr, at, length: data.byteLength }
      at += data.byteLength
      return w
    })
    const r = await peer.request('vm.exec', { vm, ops }, { data: chunks })
    const reply = r.result
    const results = reply.results.map((res) => {
      if ('at' in res) {
        const buf = Buffer.allocUnsafe(res.length)
        if (r.data === null) throw svmError('EIO', 'read results without their data')
        copyFromPayload(r.data, res.at, buf, 0, res.length)
        return { data: buf.toString('base64') }
      }
      return res as Record<string, unknown>
    })
    if (reply.error !== undefined) {
      throw new SvmError(reply.error.code as SvmError['code'], reply.error.message, { opIndex: reply.error.opIndex, results, stats: reply.stats })
    }
    return { results, stats: reply.stats }
  }
}

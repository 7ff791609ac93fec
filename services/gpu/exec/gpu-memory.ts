/**
 * How a GPU job touches memory: through the VM's GPU page table, as the
 * hardware would. A missing or insufficient translation (no entry, a write
 * through a read-only entry, an atomic through an entry without atomic
 * capability) is a GPU page fault, serviced before the access continues.
 * Each run of translated pages is used in the same synchronous step that
 * read the PTEs, so an invalidation can never slip between translation and
 * use: system pages are reached by DMA requests sent in that step, VRAM
 * pages are read or written directly.
 */
import { svmError } from '../../../shared/errors.js'
import { PAGE_SIZE } from '../../../shared/units.js'
import { devicePfn } from '../../../shared/svm/page-id.js'
import { PayloadCursor } from '../../../shared/transport/payload.js'
import type { Access } from '../../../shared/schemas/common.js'
import type { JobStats } from '../counters.js'
import type { SvmContext } from '../svm/context.js'
import type { GpuVm } from '../svm/gpu-vm.js'
import { handleFault } from '../svm/fault-handler.js'
import { PROTO_DRIVER, PROTO_SYSTEM, pteAtomic, pteId, pteProto, pteValid, pteWritable } from '../svm/page-addr.js'

/** Segments per DMA request (about 16 MiB of pages). */
const MAX_SEGMENTS = 4096
/** Consecutive faults on one page before giving up (a livelocked translation). */
const MAX_REFAULTS = 16

function usable (e: number, access: Access): boolean {
  if (!pteValid(e)) return false
  if (access === 'read') return true
  if (!pteWritable(e)) return false
  return access === 'write' || pteAtomic(e)
}

export class GpuMemory {
  constructor (private readonly ctx: SvmContext) {}

  /** Faults until the page at addr has a translation good for `access`. */
  private async translate (vm: GpuVm, addr: number, access: Access, job: JobStats): Promise<number> {
    const vpn = Math.floor(addr / PAGE_SIZE)
    for (let i = 0; i < MAX_REFAULTS; i++) {
      const e = vm.pt.get(vpn)
      if (usable(e, access)) return e
      await handleFault(this.ctx, vm, addr, access, job)
    }
    throw svmError('EBUSY', `translation of 0x${addr.toString(16)} kept being invalidated`)
  }

  /** Reads [addr, addr + out.length) into out. */
  async read (vm: GpuVm, addr: number, out: Uint8Array, job: JobStats): Promise<void> {
    const end = addr + out.byteLength
    const vram = this.ctx.pagemap.vram
    const waits: Array<Promise<void>> = []
    let a = addr
    while (a < end) {
      if (!usable(vm.pt.get(Math.floor(a / PAGE_SIZE)), 'read')) await this.translate(vm, a, 'read', job)
      const segs: number[] = []
      const dests: number[] = []
      while (a < end && segs.length < MAX_SEGMENTS * 3) {
        const e = vm.pt.get(Math.floor(a / PAGE_SIZE))
        if (!usable(e, 'read')) break
        const off = a % PAGE_SIZE
        const n = Math.min(PAGE_SIZE - off, end - a)
        const id = pteId(e)
        const proto = pteProto(e)
        if (proto === PROTO_DRIVER) {
          out.set(vram.readView(devicePfn(id)).subarray(off, off + n), a - addr)
        } else if (proto === PROTO_SYSTEM) {
          if (id !== 0) { // frame 0 is the zero page: nothing to fetch
            segs.push(id, off, n)
            dests.push(a - addr)
          } else {
            out.fill(0, a - addr, a - addr + n)
          }
        } else {
          throw svmError('ENOLINK', 'peer VRAM is not reachable from this GPU')
        }
        a += n
      }
      if (segs.length > 0) {
        waits.push(this.ctx.port.dmaRead(segs).then((p) => {
          const cursor = new PayloadCursor(p)
          for (let k = 0; k < dests.length; k++) cursor.read(out, dests[k] as number, segs[k * 3 + 2] as number)
        }))
      }
    }
    await Promise.all(waits)
  }

  /** Writes src at addr. src must not change until this resolves. */
  async write (vm: GpuVm, addr: number, src: Uint8Array, job: JobStats): Promise<void> {
    const end = addr + src.byteLength
    const vram = this.ctx.pagemap.vram
    const waits: Array<Promise<void>> = []
    let a = addr
    while (a < end) {
      if (!usable(vm.pt.get(Math.floor(a / PAGE_SIZE)), 'write')) await this.translate(vm, a, 'write', job)
      const segs: number[] = []
      const chunks: Uint8Array[] = []
      while (a < end && segs.length < MAX_SEGMENTS * 3) {
        const e = vm.pt.get(Math.floor(a / PAGE_SIZE))
        if (!usable(e, 'write')) break
        const off = a % PAGE_SIZE
        const n = Math.min(PAGE_SIZE - off, end - a)
        const proto = pteProto(e)
        const piece = src.subarray(a - addr, a - addr + n)
        if (proto === PROTO_DRIVER) {
          vram.page(devicePfn(pteId(e))).set(piece, off)
        } else if (proto === PROTO_SYSTEM) {
          segs.push(pteId(e), off, n)
          chunks.push(piece)
        } else {
          throw svmError('ENOLINK', 'peer VRAM is not reachable from this GPU')
        }
        a += n
      }
      if (segs.length > 0) waits.push(this.ctx.port.dmaWrite(segs, chunks))
    }
    await Promise.all(waits)
  }

  /** A 32-bit atomic add in device memory; returns the old value. */
  async atomicAdd (vm: GpuVm, addr: number, value: number, job: JobStats): Promise<number> {
    for (let i = 0; i < MAX_REFAULTS; i++) {
      const e = await this.translate(vm, addr, 'atomic', job)
      // translate may have awaited: re-read the PTE in this same step.
      if (vm.pt.get(Math.floor(addr / PAGE_SIZE)) !== e || pteProto(e) !== PROTO_DRIVER) continue
      const page = this.ctx.pagemap.vram.page(devicePfn(pteId(e)))
      const view = new DataView(page.buffer, page.byteOffset, PAGE_SIZE)
      const off = addr % PAGE_SIZE
      const old = view.getUint32(off, true)
      view.setUint32(off, (old + value) >>> 0, true)
      return old
    }
    throw svmError('EBUSY', `atomic at 0x${addr.toString(16)} kept losing its translation`)
  }
}

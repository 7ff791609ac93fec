/**
 * drm_gpusvm_range_get_pages and drm_gpusvm_range_evict.
 *
 * get_pages runs hmm_range_fault without the notifier lock (here: on the
 * coordinator, over the wire), then under the lock (here: synchronously)
 * drops the result if the range was unmapped (EFAULT) or the notifier's seq
 * moved (retry), and otherwise maps each page: system pages for DMA, device
 * pages of this GPU by their VRAM address. A range maps one kind only:
 * device pages from two allocations or two pagemaps, or device pages mixed
 * with system pages, are EOPNOTSUPP (the caller evicts the range and
 * retries); a system page where device memory is required is EFAULT.
 * Device pages of a peer GPU are not mapped over the interconnect by this
 * version: they count as another pagemap, so the range is evicted to system
 * memory and mapped there.
 */
import { SvmError, svmError } from '../../../shared/errors.js'
import { deviceGpu, devicePfn, hmmExpand, hmmId, hmmIsDevice } from '../../../shared/svm/page-id.js'
import type { Pages } from '../../../shared/protocol/messages/coordinator.js'
import type { SvmContext } from './context.js'
import type { GpuVm } from './gpu-vm.js'
import { PROTO_SYSTEM, dmaEncode } from './page-addr.js'
import type { SvmRange } from './range.js'
import type { Devmem } from '../pagemap/devmem.js'
import type { StepOutcome } from '../coordinator-port.js'

export const GET_PAGES_TIMEOUT_MS = 1000


export interface GetPagesOptions { readOnly: boolean, devmemOnly: boolean }

function fromStep (s: StepOutcome): Pages {
  if (s.ok) return s.pages
  throw new SvmError(s.error.code as SvmError['code'], s.error.message)
}

export async function getPages (ctx: SvmContext, vm: GpuVm, r: SvmRange, o: GetPagesOptions, prefetched: StepOutcome | null): Promise<void> {
  const n = r.notifier
  const deadline = Date.now() + GET_PAGES_TIMEOUT_MS
  let pre = prefetched
  for (;;) {
    if (Date.now() > deadline) throw svmError('EBUSY', `get_pages [0x${r.start.toString(16)}, 0x${r.end.toString(16)}) kept racing invalidations`)
    // Fast path: pages still valid for this access since the last call.
    if (pre === null && r.pagesValid && r.dma !== null && r.notifierSeq === n.seq && n.pendingSelf === 0 &&
        (o.readOnly || !r.readOnly) && (!o.devmemOnly || (r.hasDevmemPages && r.dpagemap === ctx.gpu))) return
    let pages: Pages
    if (pre !== null) {
      pages = fromStep(pre)
      pre = null
    } else {
      pages = await ctx.port.hmmRangeFault({ pid: vm.pid, notifier: n.id, start: r.start, end: r.end, fault: true, write: !o.readOnly, ownerless: false })
    }
    // --- notifier lock ---
    if (r.unmapped) throw svmError('EFAULT', 'range was unmapped')
    if (n.readRetry(pages.seq)) continue
    const entries = hmmExpand(pages.runs, r.npages)
    if (entries === null) throw svmError('EFAULT', `hmm returned pages that do not cover the range of ${r.npages}`)
    mapPages(ctx, r, entries, o)
    r.notifierSeq = pages.seq
    return
  }
}

function mapPages (ctx: SvmContext, r: SvmRange, pfns: readonly number[], o: GetPagesOptions): void {
  const dma = r.dma ?? new Float64Array(r.npages)
  let firstGpu = -1
  let firstDevmem: Devmem | undefined
  let system = false
  for (let i = 0; i < r.npages; i++) {
    const e = pfns[i] as number
    if (e < 0) throw svmError('EFAULT', 'a page is not present')
    const id = hmmId(e)
    if (hmmIsDevice(e)) {
      const gpu = deviceGpu(id)
      if (system || (i > 0 && gpu !== firstGpu)) throw svmError('EOPNOTSUPP', 'range mixes memory kinds')
      if (gpu !== ctx.gpu) throw svmError('EOPNOTSUPP', `pages of gpu${gpu} are not mapped peer-to-peer`)
      const d = ctx.pagemap.devmemOf(devicePfn(id))
      if (i > 0 && d !== firstDevmem) throw svmError('EOPNOTSUPP', 'range spans two device allocations')
      firstGpu = gpu
      firstDevmem = d
      dma[i] = ctx.pagemap.deviceMap(devicePfn(id), ctx.gpu)
    } else {
      if (firstGpu >= 0) throw svmError('EOPNOTSUPP', 'range mixes memory kinds')
      if (o.devmemOnly) throw svmError('EFAULT', 'device memory required but a page is in system memory')
      system = true
      dma[i] = dmaEncode(id, PROTO_SYSTEM)
    }
  }
  r.dma = dma
  r.hasDmaMapping = true
  r.hasDevmemPages = firstGpu >= 0
  r.dpagemap = firstGpu >= 0 ? firstGpu : null
  r.readOnly = o.readOnly
  if (firstDevmem !== undefined) ctx.pagemap.touch(firstDevmem)
}

/**
 * drm_gpusvm_range_evict: hmm_range_fault with no device owner, which brings
 * every device page of the range back to system memory through its GPU's
 * migrate_to_ram.
 */
export async function rangeEvict (ctx: SvmContext, vm: GpuVm, r: SvmRange): Promise<void> {
  await ctx.port.hmmRangeFault({ pid: vm.pid, notifier: r.notifier.id, start: r.start, end: r.end, fault: true, write: false, ownerless: true })
}

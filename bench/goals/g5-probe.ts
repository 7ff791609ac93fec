/**
 * The G5 measurement, run as its own process (node --expose-gc): a bare
 * CPU-side mm (no GPUs behind its links), one anonymous mapping of `pages`
 * 4 KiB pages, one CPU-written byte per page so every page is populated and
 * tracked. Heap + array-buffer bytes are taken after a full GC before the
 * mapping and after the writes; page data (the system slabs) is subtracted.
 * Prints one JSON line with the raw figures.
 *
 *   node --expose-gc dist/bench/goals/g5-probe.js <pages>
 */
import { Mm, MmContext } from '../../services/coordinator/mm/mm.js'
import { PhysicalMemory } from '../../services/coordinator/mm/physical.js'
import type { GpuLinks } from '../../services/coordinator/mm/gpu-links.js'
import { mmap } from '../../services/coordinator/mm/map-ops.js'
import { cpuWrite } from '../../services/coordinator/mm/cpu-access.js'
import { PROT_RW } from '../../services/coordinator/mm/vma.js'

const P = 4096

/** No GPU is attached: nothing to invalidate, migrate or free. */
const noGpus: GpuLinks = {
  invalidate: async () => {},
  migrateToRam: async () => { throw new Error('no GPU holds pages in the G5 probe') },
  freeDevicePages: async () => {},
  ownerOf: () => null,
  isLost: () => false
}

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

function usage (): { heapUsed: number, arrayBuffers: number } {
  gc?.()
  gc?.()
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers }
}

const pages = Number(process.argv[2] ?? 1024 * 1024)
if (!Number.isSafeInteger(pages) || pages < 1) throw new Error(`bad page count ${process.argv[2] ?? ''}`)

const ctx = new MmContext(new PhysicalMemory(), noGpus)
const mm = new Mm(ctx, 1)
ctx.mms.set(mm.pid, mm)

const before = usage()
const slabBefore = ctx.phys.system.slabBytes
const t0 = performance.now()
const addr = await mmap(mm, { length: pages * P, prot: PROT_RW, shared: false })
const one = new Uint8Array([0x5a])
for (let i = 0; i < pages; i++) await cpuWrite(mm, addr + i * P, one)
const populateMs = performance.now() - t0
const after = usage()
const slabAfter = ctx.phys.system.slabBytes

if (ctx.phys.system.usedFrames < pages) throw new Error(`only ${ctx.phys.system.usedFrames} frames in use after writing ${pages} pages`)
process.stdout.write(JSON.stringify({
  pages,
  before,
  after,
  slabBefore,
  slabAfter,
  usedFrames: ctx.phys.system.usedFrames,
  estimate: { phys: ctx.phys.metadataBytes(), pageTable: mm.pt.metadataBytes() },
  populateMs
}) + '\n')

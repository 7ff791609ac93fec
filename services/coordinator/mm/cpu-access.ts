/**
 * CPU loads and stores of a simulated process (what its threads would do),
 * behind PUT/GET /memory. They take the CPU fault path of hmm.ts with no
 * device owner, so a page in VRAM is first migrated back by its GPU
 * (migrate_to_ram, honouring the migration timeslice). Access outside a
 * mapping or against its protection fails with EFAULT before anything
 * changes. A read of a never-touched page returns zeros and leaves it
 * unpopulated.
 */
import { PAGE_SIZE, alignDown, alignUp } from '../../../shared/units.js'
import { hmmId } from '../../../shared/svm/page-id.js'
import { type FaultOptions, faultRange } from './hmm.js'
import type { Mm } from './mm.js'
import { ZERO_FRAME } from './system-memory.js'

/** The CPU's fault path: no device owner, check the whole span first, wait as long as the CPU would. */
function cpuFault (mm: Mm, start: number, end: number, write: boolean): FaultOptions {
  return {
    start,
    end,
    fault: true,
    write,
    owner: null,
    populateOnRead: false,
    precheck: true,
    timeoutMs: mm.ctx.config.cpuFaultDeadlineMs,
    timeoutCode: 'ETIMEDOUT'
  }
}

export async function cpuRead (mm: Mm, addr: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length)
  const start = alignDown(addr, PAGE_SIZE)
  const end = alignUp(addr + length, PAGE_SIZE)
  await faultRange(mm, cpuFault(mm, start, end, false), ({ entries }) => {
    const system = mm.phys.system
    for (let i = 0; i < entries.length; i++) {
      const frame = hmmId(entries[i] as number)
      if (frame === ZERO_FRAME) continue
      const pageAddr = start + i * PAGE_SIZE
      const from = Math.max(addr, pageAddr)
      const to = Math.min(addr + length, pageAddr + PAGE_SIZE)
      out.set(system.view(frame).subarray(from - pageAddr, to - pageAddr), from - addr)
    }
  })
  return out
}

export async function cpuWrite (mm: Mm, addr: number, data: Uint8Array): Promise<void> {
  const start = alignDown(addr, PAGE_SIZE)
  const end = alignUp(addr + data.byteLength, PAGE_SIZE)
  await faultRange(mm, cpuFault(mm, start, end, true), ({ entries }) => {
    const system = mm.phys.system
    for (let i = 0; i < entries.length; i++) {
      const frame = hmmId(entries[i] as number)
      const pageAddr = start + i * PAGE_SIZE
      const from = Math.max(addr, pageAddr)
      const to = Math.min(addr + data.byteLength, pageAddr + PAGE_SIZE)
      system.view(frame).set(data.subarray(from - addr, to - addr), from - pageAddr)
    }
  })
}

/** An mm core with fake GPU links, for unit tests. */
import { Mm, MmContext, type MmConfig } from '../../services/coordinator/mm/mm.js'
import { PhysicalMemory } from '../../services/coordinator/mm/physical.js'
import { FakeLinks } from './fake-links.js'

export interface Harness { ctx: MmContext, links: FakeLinks, mm: Mm, newMm: () => Mm }

export function mmHarness (config: Partial<MmConfig> = {}, systemBytes?: number): Harness {
  const links = new FakeLinks()
  const ctx = new MmContext(new PhysicalMemory(systemBytes), links, { hmmTimeoutMs: 1000, migrationDeadlineMs: 5000, cpuFaultDeadlineMs: 5000, ...config })
  let pid = 1
  const newMm = (): Mm => {
    const mm = new Mm(ctx, pid++)
    ctx.mms.set(mm.pid, mm)
    return mm
  }
  return { ctx, links, mm: newMm(), newMm }
}

export function bytes (n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

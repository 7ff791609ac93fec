import t from 'tap'
import { bytes, mmHarness, type Harness } from '../../helpers/mm-harness.js'
import { mmap, munmap } from '../../../services/coordinator/mm/map-ops.js'
import { cpuRead, cpuWrite } from '../../../services/coordinator/mm/cpu-access.js'
import { faultRange } from '../../../services/coordinator/mm/hmm.js'
import { abortSession, collectDevicePfns, collectToDevice, collectToRam, commitToDevice, commitToRam } from '../../../services/coordinator/mm/migrate.js'
import { residency } from '../../../services/coordinator/mm/residency.js'
import { fork } from '../../../services/coordinator/mm/fork.js'
import { PROT_READ, PROT_RW } from '../../../services/coordinator/mm/vma.js'
import { HMM_INVALID, deviceId, hmmEncode, hmmId, hmmIsDevice, hmmIsWritable } from '../../../shared/svm/page-id.js'
import { ZERO_FRAME } from '../../../services/coordinator/mm/system-memory.js'
import { PayloadCursor, payloadOf } from '../../../shared/transport/payload.js'
import type { Mm } from '../../../services/coordinator/mm/mm.js'

const P = 4096
const A = 0x30000000
const GPU = 2

/** A toy GPU: VRAM as a map, migrating with the mm's primitives like the real one. */
function toyGpu (h: Harness): { vram: Map<number, Buffer>, toDevice: (mm: Mm, start: number, end: number) => Promise<void> } {
  const vram = new Map<number, Buffer>()
  let nextPfn = 0
  h.links.onMigrateToRam = async (gpu, req) => {
    const mm = h.ctx.mms.get(req.pid) as Mm
    const out = await collectToRam(mm, req.vmaStart, req.vmaEnd, gpu, 0, 1 << 20, h.links.ownerOf(gpu))
    if (out.session === null) return { retryAfterMs: 0 }
    const chunks = out.pfns.map((p) => vram.get(p) as Buffer)
    commitToRam(h.ctx, out.session, payloadOf(chunks))
    for (const p of out.pfns) vram.delete(p)
    return { retryAfterMs: 0 }
  }
  const toDevice = async (mm: Mm, start: number, end: number): Promise<void> => {
    const out = await collectToDevice(mm, start, end, GPU, h.links.ownerOf(GPU))
    if (out.status !== 'collected') throw new Error('expected a collection')
    const dst: number[] = []
    const cursor = new PayloadCursor(payloadOf(out.data))
    for (const c of out.copy) {
      const pfn = nextPfn++
      const page = Buffer.alloc(P)
      if (c === 1) cursor.read(page, 0, P)
      vram.set(pfn, page)
      dst.push(pfn)
    }
    t.same(commitToDevice(h.ctx, out.session, dst[0] as number), [])
  }
  return { vram, toDevice }
}

async function hmm (mm: Mm, start: number, end: number, opts: { fault?: boolean, write?: boolean, owner?: number | null } = {}): Promise<number[]> {
  return await faultRange(mm, { start, end, fault: opts.fault ?? true, write: opts.write ?? false, owner: opts.owner ?? null, timeoutMs: 1000 }, (r) => r.entries)
}

t.test('hmm_range_fault on each kind of entry', async (t) => {
  const h = mmHarness()
  const { mm } = h
  await mmap(mm, { length: 4 * P, addr: A, prot: PROT_RW, shared: false })
  t.same(await hmm(mm, A, A + P, { fault: false }), [HMM_INVALID], 'none without fault: not valid')
  const [zero] = await hmm(mm, A, A + P)
  t.equal(zero, hmmEncode(ZERO_FRAME, false, false), 'read fault maps the zero page read-only')
  t.same(residency(mm, A, A + P)[0]?.location, 'unpopulated')
  const [w] = await hmm(mm, A, A + P, { write: true })
  t.ok(hmmIsWritable(w as number) && hmmId(w as number) !== ZERO_FRAME, 'write fault gives a private writable frame')
  await cpuWrite(mm, A + P, Buffer.from('x'))
  const [sys] = await hmm(mm, A + P, A + 2 * P, { fault: false })
  t.ok(hmmIsWritable(sys as number) && !hmmIsDevice(sys as number), 'present system page')
  // Device page: in place for its owner, migrated back for anyone else.
  const gpu = toyGpu(h)
  await cpuWrite(mm, A + 2 * P, Buffer.from('dev'))
  await gpu.toDevice(mm, A + 2 * P, A + 3 * P)
  t.equal(residency(mm, A + 2 * P, A + 3 * P)[0]?.location, `gpu${GPU}`)
  const [inPlace] = await hmm(mm, A + 2 * P, A + 3 * P, { owner: h.links.ownerOf(GPU) })
  t.ok(hmmIsDevice(inPlace as number), 'own device page returned in place')
  t.equal(hmmId(inPlace as number), deviceId(GPU, 0))
  t.same(await hmm(mm, A + 2 * P, A + 3 * P, { fault: false, owner: 999 }), [HMM_INVALID], 'other owner without fault: not valid')
  const [back] = await hmm(mm, A + 2 * P, A + 3 * P, { owner: 999 })
  t.notOk(hmmIsDevice(back as number), 'other owner with fault: migrated to RAM first')
  t.same(await cpuRead(mm, A + 2 * P, 3), Buffer.from('dev'))
  t.equal(gpu.vram.size, 0)
  // Permission errors.
  await mmap(mm, { length: P, addr: A + 8 * P, prot: PROT_READ, shared: false })
  await t.rejects(hmm(mm, A + 8 * P, A + 9 * P, { write: true }), { code: 'EPERM' })
  await t.rejects(hmm(mm, A + 20 * P, A + 21 * P), { code: 'EFAULT' })
})

t.test('migration to device and back keeps bytes; CPU access faults the page back', async (t) => {
  const h = mmHarness()
  const { mm, ctx } = h
  const gpu = toyGpu(h)
  await mmap(mm, { length: 16 * P, addr: A, prot: PROT_RW, shared: false })
  const data = bytes(10 * P, 21)
  await cpuWrite(mm, A, data)
  const framesBefore = ctx.phys.system.usedFrames
  await gpu.toDevice(mm, A, A + 16 * P)
  t.equal(ctx.phys.system.usedFrames, framesBefore - 10, 'source frames freed')
  t.same(residency(mm, A, A + 16 * P), [{ addr: A, length: 16 * P, location: `gpu${GPU}` }])
  t.equal(gpu.vram.size, 16, 'unpopulated pages arrive as zeros')
  t.same(await cpuRead(mm, A, 16 * P), Buffer.concat([data, Buffer.alloc(6 * P)]))
  t.same(residency(mm, A, A + 16 * P), [{ addr: A, length: 16 * P, location: 'system' }])
})

t.test('collect is all or nothing', async (t) => {
  const h = mmHarness()
  const { mm } = h
  const gpu = toyGpu(h)
  await mmap(mm, { length: 4 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, bytes(4 * P, 2))
  await gpu.toDevice(mm, A + P, A + 2 * P)
  mm.notifiers.insert(5, 1, A, A + 4 * P)
  await t.rejects(collectToDevice(mm, A, A + 4 * P, GPU, h.links.ownerOf(GPU)), { code: 'EBUSY' }, 'a page already on the device')
  await t.rejects(collectToDevice(mm, A, A + 4 * P, 7, h.links.ownerOf(7)), { code: 'EBUSY' }, 'a page on another device')
  t.same(h.links.eventsFor(5), [], 'a doomed collection invalidates nothing')
  t.same(residency(mm, A, A + 4 * P).map((r) => r.location), ['system', `gpu${GPU}`, 'system'], 'nothing moved')
  const eq = await collectToDevice(mm, A + P, A + 2 * P, GPU, h.links.ownerOf(GPU))
  t.equal(eq.status, 'equal')
  // A page locked by another migration.
  const first = await collectToDevice(mm, A + 2 * P, A + 3 * P, GPU, h.links.ownerOf(GPU))
  await t.rejects(collectToDevice(mm, A + 2 * P, A + 4 * P, GPU, h.links.ownerOf(GPU)), { code: 'EBUSY' })
  if (first.status === 'collected') abortSession(h.ctx, first.session)
  t.same(await cpuRead(mm, A, 4 * P), bytes(4 * P, 2), 'bytes intact after the abort')
  await t.rejects(collectToDevice(mm, A + 3 * P, A + 5 * P, GPU, null), { code: 'EINVAL' }, 'window past the VMA')
  await t.rejects(collectToDevice(mm, A + 10 * P, A + 11 * P, GPU, null), { code: 'ENOENT' })
})

t.test('a CPU access waits for a migration in flight', async (t) => {
  const h = mmHarness()
  const { mm } = h
  await mmap(mm, { length: P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, Buffer.from('before'))
  const out = await collectToDevice(mm, A, A + P, GPU, h.links.ownerOf(GPU))
  if (out.status !== 'collected') throw new Error('collect')
  let read: Buffer | null = null
  const reader = cpuRead(mm, A, 6).then((b) => { read = b })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(read, null, 'blocked on the migration entry')
  abortSession(h.ctx, out.session)
  await reader
  t.same(read, Buffer.from('before'))
})

t.test('munmap during a migration: the commit places nothing and reports the page', async (t) => {
  const h = mmHarness()
  const { mm, ctx } = h
  await mmap(mm, { length: 2 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, bytes(2 * P))
  const used = ctx.phys.system.usedFrames
  const out = await collectToDevice(mm, A, A + 2 * P, GPU, h.links.ownerOf(GPU))
  if (out.status !== 'collected') throw new Error('collect')
  await munmap(mm, A + P, P)
  t.same(commitToDevice(ctx, out.session, 10), [1], 'the unmapped page failed')
  t.equal(ctx.phys.system.usedFrames, used - 2, 'both sources freed')
  t.same(residency(mm, A, A + 2 * P), [{ addr: A, length: P, location: `gpu${GPU}` }])
})

t.test('fork shares device pages read-only; a write brings them back and copies', async (t) => {
  const h = mmHarness()
  const { mm } = h
  const gpu = toyGpu(h)
  await mmap(mm, { length: 2 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, Buffer.from('shared'))
  await gpu.toDevice(mm, A, A + 2 * P)
  const child = await fork(mm, 9)
  t.equal(residency(child, A, A + P)[0]?.location, `gpu${GPU}`, 'one physical page, two mappings')
  const [ro] = await hmm(mm, A, A + P, { owner: h.links.ownerOf(GPU) })
  t.ok(hmmIsDevice(ro as number) && !hmmIsWritable(ro as number), 'read-only in place after fork')
  await cpuWrite(child, A, Buffer.from('CHILD!'))
  t.same(await cpuRead(mm, A, 6), Buffer.from('shared'))
  t.same(await cpuRead(child, A, 6), Buffer.from('CHILD!'))
})

t.test('evicting device pages by pfn finds every mapping', async (t) => {
  const h = mmHarness()
  const { mm, ctx } = h
  const gpu = toyGpu(h)
  await mmap(mm, { length: 2 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, bytes(2 * P, 4))
  await gpu.toDevice(mm, A, A + 2 * P)
  const child = await fork(mm, 11)
  const out = await collectDevicePfns(ctx, GPU, [0, 1, 99], null)
  t.same(out.index, [0, 1], 'the unmapped pfn is not collected')
  if (out.session === null) throw new Error('no session')
  commitToRam(ctx, out.session, payloadOf(out.pfns.map((p) => gpu.vram.get(p) as Buffer)))
  t.same(residency(mm, A, A + 2 * P), [{ addr: A, length: 2 * P, location: 'system' }])
  t.same(residency(child, A, A + 2 * P), [{ addr: A, length: 2 * P, location: 'system' }])
  t.same(await cpuRead(child, A, 2 * P), bytes(2 * P, 4))
  await cpuWrite(mm, A, Buffer.from('p'))
  t.same(await cpuRead(child, A, 1), bytes(1, 4), 'still copy-on-write after coming back')
})

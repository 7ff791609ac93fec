import t from 'tap'
import { bytes, mmHarness } from '../../helpers/mm-harness.js'
import { mmap, mprotect, mremap, munmap } from '../../../services/coordinator/mm/map-ops.js'
import { cpuRead, cpuWrite } from '../../../services/coordinator/mm/cpu-access.js'
import { residency } from '../../../services/coordinator/mm/residency.js'
import { PROT_NONE, PROT_READ, PROT_RW } from '../../../services/coordinator/mm/vma.js'

const P = 4096
const A = 0x10000000

t.test('mmap places, zero-fills lazily, and reads back what the CPU wrote', async (t) => {
  const { mm } = mmHarness()
  const addr = await mmap(mm, { length: 4 * P, prot: PROT_RW, shared: false })
  t.equal(addr % P, 0)
  t.same(await cpuRead(mm, addr, 4 * P), Buffer.alloc(4 * P), 'never-touched memory reads as zeros')
  t.same(residency(mm, addr, addr + 4 * P), [{ addr, length: 4 * P, location: 'unpopulated' }], 'and stays unpopulated')
  const data = bytes(5000, 7)
  await cpuWrite(mm, addr + 100, data)
  t.same(await cpuRead(mm, addr + 100, 5000), data)
  t.same(residency(mm, addr, addr + 4 * P), [
    { addr, length: 2 * P, location: 'system' },
    { addr: addr + 2 * P, length: 2 * P, location: 'unpopulated' }
  ])
})

t.test('bad spans fail with the kernel codes and change nothing', async (t) => {
  const { mm } = mmHarness()
  await t.rejects(mmap(mm, { length: 100, prot: PROT_RW, shared: false }), { code: 'EINVAL' })
  await t.rejects(mmap(mm, { length: P, addr: A + 1, prot: PROT_RW, shared: false }), { code: 'EINVAL' })
  await t.rejects(mmap(mm, { length: P, addr: 0, prot: PROT_RW, shared: false }), { code: 'EPERM' })
  await t.rejects(mmap(mm, { length: 2 * P, addr: 2 ** 47 - P, prot: PROT_RW, shared: false }), { code: 'ENOMEM' })
  t.equal(mm.vmas.count, 0)
  await mmap(mm, { length: 2 * P, addr: A, prot: PROT_READ, shared: false })
  await t.rejects(cpuWrite(mm, A, Buffer.from('x')), { code: 'EFAULT' }, 'write to read-only')
  await t.rejects(cpuRead(mm, A + P, 2 * P), { code: 'EFAULT' }, 'read past the end')
  await t.rejects(cpuRead(mm, A - P, P), { code: 'EFAULT' }, 'read of no mapping')
  await t.rejects(mprotect(mm, A, 4 * P, PROT_RW), { code: 'ENOMEM' }, 'mprotect over a hole')
  t.same(mm.vmas.all.map((v) => v.prot), [PROT_READ], 'nothing changed')
})

t.test('MAP_FIXED replaces what was there, with an UNMAP invalidation', async (t) => {
  const { mm, links } = mmHarness()
  await mmap(mm, { length: 4 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, bytes(4 * P, 3))
  mm.notifiers.insert(0, 1, 0, 2 ** 29 * 2)
  await mmap(mm, { length: 2 * P, addr: A + P, prot: PROT_RW, shared: false })
  t.same(links.eventsFor(0).map((e) => [e.event, e.start, e.end]), [['unmap', A + P, A + 3 * P]])
  t.same(await cpuRead(mm, A, P), bytes(4 * P, 3).subarray(0, P))
  t.same(await cpuRead(mm, A + P, 2 * P), Buffer.alloc(2 * P))
  t.same(await cpuRead(mm, A + 3 * P, P), bytes(4 * P, 3).subarray(3 * P))
  t.equal(mm.vmas.count, 1, 'the pieces merged back into one VMA')
})

t.test('munmap at every boundary: head, middle, tail, whole, hole', async (t) => {
  const { mm, ctx } = mmHarness()
  await mmap(mm, { length: 8 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, bytes(8 * P, 9))
  const used = ctx.phys.system.usedFrames
  await munmap(mm, A + 3 * P, 2 * P)
  t.equal(ctx.phys.system.usedFrames, used - 2, 'frames of the hole are freed')
  t.same(mm.vmas.all.map((v) => [v.start - A, v.end - A]), [[0, 3 * P], [5 * P, 8 * P]])
  await munmap(mm, A, P)
  await munmap(mm, A + 7 * P, P)
  await munmap(mm, A + 100 * P, P) // nothing there: fine
  t.same(mm.vmas.all.map((v) => [v.start - A, v.end - A]), [[P, 3 * P], [5 * P, 7 * P]])
  t.same(await cpuRead(mm, A + P, 2 * P), bytes(8 * P, 9).subarray(P, 3 * P))
  t.same(await cpuRead(mm, A + 5 * P, 2 * P), bytes(8 * P, 9).subarray(5 * P, 7 * P))
  await munmap(mm, A, 8 * P)
  t.equal(mm.vmas.count, 0)
  t.equal(ctx.phys.system.usedFrames, used - 8)
})

t.test('mprotect drops write permission, invalidates, and re-merges', async (t) => {
  const { mm, links } = mmHarness()
  await mmap(mm, { length: 4 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, bytes(4 * P))
  mm.notifiers.insert(3, 7, A, A + 4 * P)
  await mprotect(mm, A + P, P, PROT_READ)
  t.same(links.eventsFor(3).map((e) => [e.event, e.start, e.end]), [['protection', A + P, A + 2 * P]])
  await t.rejects(cpuWrite(mm, A + P, Buffer.from('x')), { code: 'EFAULT' })
  await cpuWrite(mm, A, Buffer.from('ok'))
  await mprotect(mm, A + P, P, PROT_READ)
  t.equal(links.eventsFor(3).length, 1, 'an unchanged protection does not invalidate')
  await mprotect(mm, A, 4 * P, PROT_NONE)
  await t.rejects(cpuRead(mm, A, 1), { code: 'EFAULT' })
  await mprotect(mm, A, 4 * P, PROT_RW)
  t.equal(mm.vmas.count, 1)
  t.same(await cpuRead(mm, A + 2, 10), bytes(4 * P).subarray(2, 12), 'data survived the round trip')
})

t.test('mremap: shrink, grow in place, grow by moving, fixed move, dontUnmap', async (t) => {
  const { mm, links } = mmHarness()
  const data = bytes(4 * P, 11)
  await mmap(mm, { length: 4 * P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, data)
  t.equal(await mremap(mm, { addr: A, oldLength: 4 * P, newLength: 2 * P }), A)
  t.same(mm.vmas.all.map((v) => [v.start, v.end]), [[A, A + 2 * P]])
  t.equal(await mremap(mm, { addr: A, oldLength: 2 * P, newLength: 6 * P }), A, 'grows in place into free space')
  t.same(await cpuRead(mm, A, 6 * P), Buffer.concat([data.subarray(0, 2 * P), Buffer.alloc(4 * P)]))
  // A neighbour blocks growth: it has to move.
  await mmap(mm, { length: P, addr: A + 6 * P, prot: PROT_READ, shared: false })
  mm.notifiers.insert(0, 1, A, A + 8 * P)
  const moved = await mremap(mm, { addr: A, oldLength: 6 * P, newLength: 8 * P })
  t.not(moved, A)
  t.same(await cpuRead(mm, moved, 2 * P), data.subarray(0, 2 * P), 'data moved with the mapping')
  t.ok(links.eventsFor(0).some((e) => e.event === 'unmap' && e.start === A), 'the source was invalidated')
  await t.rejects(cpuRead(mm, A, 1), { code: 'EFAULT' }, 'old span is gone')
  // Fixed move over an existing mapping.
  const B = A + 0x100000
  await mmap(mm, { length: 2 * P, addr: B, prot: PROT_RW, shared: false })
  await cpuWrite(mm, B, Buffer.alloc(2 * P, 0xee))
  t.equal(await mremap(mm, { addr: moved, oldLength: 2 * P, newLength: 2 * P, newAddr: B }), B)
  t.same(await cpuRead(mm, B, 2 * P), data.subarray(0, 2 * P))
  // dontUnmap: the old span stays mapped, empty.
  const C = A + 0x200000
  const to = await mremap(mm, { addr: B, oldLength: 2 * P, newLength: 2 * P, newAddr: C, dontUnmap: true })
  t.equal(to, C)
  t.same(await cpuRead(mm, C, 2 * P), data.subarray(0, 2 * P))
  t.same(await cpuRead(mm, B, 2 * P), Buffer.alloc(2 * P), 'old span reads as fresh memory')
  await t.rejects(mremap(mm, { addr: C, oldLength: P, newLength: 2 * P, dontUnmap: true }), { code: 'EINVAL' })
  await t.rejects(mremap(mm, { addr: C, oldLength: 2 * P, newLength: 2 * P, newAddr: C + P }), { code: 'EINVAL' }, 'overlapping move')
  await t.rejects(mremap(mm, { addr: C, oldLength: 8 * P, newLength: 8 * P }), { code: 'EFAULT' }, 'beyond the mapping')
})

t.test('shared mappings are not copy-on-write and keep pages across fork and munmap', async (t) => {
  const { mm, ctx } = mmHarness()
  const { fork } = await import('../../../services/coordinator/mm/fork.js')
  await mmap(mm, { length: 2 * P, addr: A, prot: PROT_RW, shared: true })
  await cpuWrite(mm, A, Buffer.from('parent'))
  const child = await fork(mm, 2)
  t.same(await cpuRead(child, A, 6), Buffer.from('parent'))
  await cpuWrite(child, A + P, Buffer.from('child'))
  t.same(await cpuRead(mm, A + P, 5), Buffer.from('child'), 'writes are shared both ways')
  t.same(residency(mm, A, A + 2 * P), [{ addr: A, length: 2 * P, location: 'system' }])
  await munmap(mm, A, 2 * P)
  t.same(await cpuRead(child, A, 6), Buffer.from('parent'), 'the object outlives one mapping')
  const used = ctx.phys.system.usedFrames
  await munmap(child, A, 2 * P)
  t.equal(ctx.phys.system.usedFrames, used - 2, 'and is freed with the last one')
})

import t from 'tap'
import { bytes, mmHarness } from '../../helpers/mm-harness.js'
import { mmap } from '../../../services/coordinator/mm/map-ops.js'
import { cpuRead, cpuWrite } from '../../../services/coordinator/mm/cpu-access.js'
import { fork } from '../../../services/coordinator/mm/fork.js'
import { PROT_RW } from '../../../services/coordinator/mm/vma.js'

const P = 4096
const A = 0x20000000

t.test('fork shares frames copy-on-write; writes on either side stay private', async (t) => {
  const { mm, ctx, links } = mmHarness()
  await mmap(mm, { length: 4 * P, addr: A, prot: PROT_RW, shared: false })
  const data = bytes(4 * P, 5)
  await cpuWrite(mm, A, data)
  mm.notifiers.insert(0, 1, A, A + 4 * P)
  const used = ctx.phys.system.usedFrames
  const child = await fork(mm, 2)
  t.equal(ctx.phys.system.usedFrames, used, 'no copy at fork')
  t.same(links.eventsFor(0).map((e) => e.event), ['protection'], 'the parent\'s GPU mappings are write-protected')
  t.same(await cpuRead(child, A, 4 * P), data)
  await cpuWrite(child, A, Buffer.from('child'))
  t.equal(ctx.phys.system.usedFrames, used + 1, 'one page copied on the child\'s write')
  t.same(await cpuRead(mm, A, 5), data.subarray(0, 5), 'parent unaffected')
  await cpuWrite(mm, A + P, Buffer.from('parent'))
  t.same(links.eventsFor(0).map((e) => [e.event, e.start, e.end]).slice(1), [['clear', A + P, A + 2 * P]], 'COW in the parent invalidates that page')
  t.same(await cpuRead(child, A + P, 6), data.subarray(P, P + 6), 'child unaffected')
  // The child exits; the parent's page becomes exclusive again and is reused in place.
  const { exitMm } = await import('../../../services/coordinator/mm/exit.js')
  await exitMm(child)
  const before = ctx.phys.system.usedFrames
  await cpuWrite(mm, A + 2 * P, Buffer.from('reuse'))
  t.equal(ctx.phys.system.usedFrames, before, 'sole owner writes without copying')
})

t.test('a grandchild sees the data of the generation that forked it', async (t) => {
  const { mm } = mmHarness()
  await mmap(mm, { length: P, addr: A, prot: PROT_RW, shared: false })
  await cpuWrite(mm, A, Buffer.from('one'))
  const c = await fork(mm, 2)
  await cpuWrite(c, A, Buffer.from('two'))
  const g = await fork(c, 3)
  await cpuWrite(c, A, Buffer.from('tri'))
  t.same(await cpuRead(mm, A, 3), Buffer.from('one'))
  t.same(await cpuRead(c, A, 3), Buffer.from('tri'))
  t.same(await cpuRead(g, A, 3), Buffer.from('two'))
})

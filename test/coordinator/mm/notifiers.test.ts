import t from 'tap'
import { mmHarness } from '../../helpers/mm-harness.js'

t.test('seq is odd while an invalidation is in flight; read_begin waits it out', async (t) => {
  const { mm, links } = mmHarness()
  const n = mm.notifiers.insert(0, 1, 0x1000, 0x9000)
  t.equal(await n.readBegin(), 0)
  links.behaviour.set(0, 20)
  const inv = mm.notifiers.begin(0x2000, 0x3000, 'clear', null)
  t.equal(n.seq % 2, 1, 'odd while in flight')
  let begun = -1
  const reader = n.readBegin().then((s) => { begun = s })
  const handle = await inv
  t.equal(begun, -1, 'read_begin is still waiting while the caller changes PTEs')
  handle.end()
  await reader
  t.equal(begun, 2)
  t.equal(n.readRetry(0), true)
  t.equal(n.readRetry(2), false)
  t.same(links.eventsFor(0), [{ notifier: 1, start: 0x2000, end: 0x3000, event: 'clear', owner: null, seq: 2 }],
    'the callback learns the seq the notifier will settle at')
})

t.test('overlapping and adjacent notifiers: only overlapping ones are called, clamped', async (t) => {
  const { mm, links } = mmHarness()
  mm.notifiers.insert(0, 1, 0, 0x4000)
  mm.notifiers.insert(0, 2, 0x4000, 0x8000)
  mm.notifiers.insert(1, 9, 0x3000, 0x5000)
  mm.notifiers.insert(1, 10, 0x8000, 0x9000)
  const inv = await mm.notifiers.begin(0x3000, 0x8000, 'unmap', null)
  inv.end()
  t.same(links.eventsFor(0).map((e) => [e.notifier, e.start, e.end]), [[1, 0x3000, 0x4000], [2, 0x4000, 0x8000]])
  t.same(links.eventsFor(1).map((e) => [e.notifier, e.start, e.end]), [[9, 0x3000, 0x5000]])
  t.equal(links.invalidations.length, 2, 'one message per GPU')
})

t.test('an invalidation waits for every acknowledgement', async (t) => {
  const { mm, links } = mmHarness()
  mm.notifiers.insert(0, 1, 0, 0x10000)
  mm.notifiers.insert(1, 1, 0, 0x10000)
  links.behaviour.set(0, 5)
  links.behaviour.set(1, 40)
  const t0 = Date.now()
  const inv = await mm.notifiers.begin(0, 0x1000, 'clear', null)
  t.ok(Date.now() - t0 >= 35, 'resolved only after the slowest GPU acknowledged')
  inv.end()
})

t.test('nested invalidations settle once; removed notifiers get no callbacks', async (t) => {
  const { mm, links } = mmHarness()
  const n = mm.notifiers.insert(0, 1, 0, 0x10000)
  const a = await mm.notifiers.begin(0, 0x1000, 'clear', null)
  const b = await mm.notifiers.begin(0x2000, 0x3000, 'clear', null)
  t.equal(n.seq, 1)
  a.end()
  t.equal(n.seq, 1, 'still in flight')
  b.end()
  t.equal(n.seq, 2)
  t.same(links.eventsFor(0).map((e) => e.seq), [2, 2])
  mm.notifiers.remove(0, 1)
  const c = await mm.notifiers.begin(0, 0x10000, 'unmap', null)
  c.end()
  t.equal(links.eventsFor(0).length, 2)
  t.equal(n.removed, true)
})

t.test('self-invalidated notifiers are bumped but not messaged', async (t) => {
  const { mm, links } = mmHarness()
  const n = mm.notifiers.insert(0, 1, 0, 0x10000)
  mm.notifiers.insert(0, 2, 0x10000, 0x20000)
  const inv = await mm.notifiers.begin(0, 0x20000, 'migrate', 5, { gpu: 0, ids: [1] })
  t.same(links.eventsFor(0).map((e) => [e.notifier, e.event, e.owner]), [[2, 'migrate', 5]])
  t.equal(n.settledSeq(), 2)
  inv.end()
  t.equal(n.seq, 2)
})

import t from 'tap'
import { MMAP_BASE, PROT_READ, PROT_RW, VmaList } from '../../../services/coordinator/mm/vma.js'

const M = 0x10000000

function spans (l: VmaList): Array<[number, number, number]> {
  return l.all.map((v) => [v.start, v.end, v.prot])
}

t.test('insert merges adjacent compatible areas, not incompatible ones', async (t) => {
  const l = new VmaList()
  l.insert({ start: M, end: M + 0x2000, prot: PROT_RW, shm: null, pgoff: 0 })
  l.insert({ start: M + 0x2000, end: M + 0x3000, prot: PROT_RW, shm: null, pgoff: 0 })
  t.same(spans(l), [[M, M + 0x3000, PROT_RW]])
  l.insert({ start: M + 0x3000, end: M + 0x4000, prot: PROT_READ, shm: null, pgoff: 0 })
  t.same(spans(l), [[M, M + 0x3000, PROT_RW], [M + 0x3000, M + 0x4000, PROT_READ]])
})

t.test('protect splits at both boundaries and re-merges when restored', async (t) => {
  const l = new VmaList()
  l.insert({ start: M, end: M + 0x10000, prot: PROT_RW, shm: null, pgoff: 0 })
  const changed = l.protect(M + 0x4000, M + 0x8000, PROT_READ)
  t.same(changed, [{ start: M + 0x4000, end: M + 0x8000, old: PROT_RW }])
  t.same(spans(l), [[M, M + 0x4000, PROT_RW], [M + 0x4000, M + 0x8000, PROT_READ], [M + 0x8000, M + 0x10000, PROT_RW]])
  l.protect(M + 0x4000, M + 0x8000, PROT_RW)
  t.same(spans(l), [[M, M + 0x10000, PROT_RW]])
  // Protecting a prefix and a suffix.
  l.protect(M, M + 0x1000, PROT_READ)
  l.protect(M + 0xf000, M + 0x10000, PROT_READ)
  t.same(spans(l), [[M, M + 0x1000, PROT_READ], [M + 0x1000, M + 0xf000, PROT_RW], [M + 0xf000, M + 0x10000, PROT_READ]])
})

t.test('remove carves holes at every boundary case', async (t) => {
  const l = new VmaList()
  l.insert({ start: M, end: M + 0x10000, prot: PROT_RW, shm: null, pgoff: 0 })
  t.same(l.remove(M + 0x4000, M + 0x5000).map((v) => [v.start, v.end]), [[M + 0x4000, M + 0x5000]])
  t.same(spans(l), [[M, M + 0x4000, PROT_RW], [M + 0x5000, M + 0x10000, PROT_RW]])
  t.equal(l.covers(M, M + 0x4000), true)
  t.equal(l.covers(M, M + 0x5000), false)
  t.same(l.remove(M + 0x3000, M + 0x6000).map((v) => [v.start, v.end]), [[M + 0x3000, M + 0x4000], [M + 0x5000, M + 0x6000]])
  t.same(l.remove(0, 2 ** 47).length, 2)
  t.equal(l.count, 0)
})

t.test('findFree places top-down, aligns 2 MiB mappings and skips used space', async (t) => {
  const l = new VmaList()
  const a = l.findFree(0x1000) as number
  t.equal(a, MMAP_BASE - 0x1000)
  l.insert({ start: a, end: a + 0x1000, prot: PROT_RW, shm: null, pgoff: 0 })
  const b = l.findFree(4 * 1024 * 1024) as number
  t.equal(b % (2 * 1024 * 1024), 0)
  t.ok(b + 4 * 1024 * 1024 <= a)
  l.insert({ start: b, end: b + 4 * 1024 * 1024, prot: PROT_READ, shm: null, pgoff: 0 })
  const c = l.findFree(0x1000) as number
  t.ok(c < a, 'still below the first mapping')
  t.equal(l.overlapping(c, c + 0x1000).length, 0)
})

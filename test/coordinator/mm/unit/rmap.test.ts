/**
 * RmapSpace (reverse map) against a Map-of-multisets model: add, remove,
 * relocate and mappings/count over pages on both sides of a typed-array
 * block boundary; misuse throws and changes nothing. Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { RmapSpace } from '../../../../services/coordinator/mm/rmap.js'

const SEED = Number(process.env.FC_SEED ?? 0x4a9)
const RUNS = Number(process.env.FC_RUNS ?? 300)

const BLOCK = 1 << 14 // RmapSpace's block size, to straddle

/** Mappings as sorted "pid:vpn" strings (a multiset). */
function norm (flat: number[]): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) out.push(`${flat[i] as number}:${flat[i + 1] as number}`)
  return out.sort()
}

type Op =
  | { k: 'add', page: number, pid: number, vpn: number }
  | { k: 'remove', page: number, pick: number }
  | { k: 'removeMissing', page: number, pid: number, vpn: number }
  | { k: 'relocate', page: number, pick: number, vpn: number }
  | { k: 'relocateMissing', page: number, pid: number, vpn: number }

t.test('RmapSpace against a Map model (property)', async (t) => {
  const pages = [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 5]
  const pageArb = fc.constantFrom(...pages)
  const pidArb = fc.integer({ min: 0, max: 3 })
  // Few distinct vpns so pids share pages at the same vpn, as fork does; a
  // huge one checks that vpns are not truncated.
  const vpnArb = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(2 ** 36 - 1))
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ k: fc.constant('add' as const), page: pageArb, pid: pidArb, vpn: vpnArb }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('remove' as const), page: pageArb, pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('removeMissing' as const), page: pageArb, pid: pidArb, vpn: vpnArb }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('relocate' as const), page: pageArb, pick: fc.nat(), vpn: vpnArb }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('relocateMissing' as const), page: pageArb, pid: pidArb, vpn: vpnArb }) }
  )
  const out = fc.check(fc.property(fc.array(opArb, { maxLength: 120, size: 'max' }), (ops) => {
    const r = new RmapSpace(2 * BLOCK + 6)
    const model = new Map<number, string[]>() // page -> "pid:vpn" list (multiset)
    const get = (page: number): string[] => model.get(page) ?? []
    for (const [i, op] of ops.entries()) {
      const cur = get(op.page)
      switch (op.k) {
        case 'add':
          r.add(op.page, op.pid, op.vpn)
          model.set(op.page, [...cur, `${op.pid}:${op.vpn}`])
          break
        case 'remove': {
          if (cur.length === 0) continue
          const m = cur[op.pick % cur.length] as string
          const [pid, vpn] = m.split(':').map(Number) as [number, number]
          const left = r.remove(op.page, pid, vpn)
          const next = [...cur]
          next.splice(next.indexOf(m), 1)
          model.set(op.page, next)
          assert.equal(left, next.length, `remove returns the remaining count (op ${i})`)
          break
        }
        case 'removeMissing':
        case 'relocateMissing': {
          if (cur.includes(`${op.pid}:${op.vpn}`)) continue
          const before = norm(r.mappings(op.page))
          assert.throws(() => {
            if (op.k === 'removeMissing') r.remove(op.page, op.pid, op.vpn)
            else r.relocate(op.page, op.pid, op.vpn, op.vpn + 1)
          }, /not mapped/, `${op.k} of an absent mapping throws (op ${i})`)
          assert.deepEqual(norm(r.mappings(op.page)), before, 'and changes nothing')
          break
        }
        case 'relocate': {
          if (cur.length === 0) continue
          const m = cur[op.pick % cur.length] as string
          const [pid, vpn] = m.split(':').map(Number) as [number, number]
          r.relocate(op.page, pid, vpn, op.vpn)
          const next = [...cur]
          next[next.indexOf(m)] = `${pid}:${op.vpn}`
          model.set(op.page, next)
          break
        }
      }
      for (const page of pages) {
        assert.equal(r.count(page), get(page).length, `count(${page}) after op ${i} ${JSON.stringify(op)}`)
        assert.deepEqual(norm(r.mappings(page)), [...get(page)].sort(), `mappings(${page}) after op ${i} ${JSON.stringify(op)}`)
      }
    }
    // Remove everything: counts go back to zero, mappings empty.
    for (const page of pages) {
      for (const m of get(page)) {
        const [pid, vpn] = m.split(':').map(Number) as [number, number]
        r.remove(page, pid, vpn)
      }
      assert.equal(r.count(page), 0)
      assert.deepEqual(r.mappings(page), [])
    }
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `RmapSpace matches the model (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

t.test('examples: first mapping inline, the rest spilled, promotion on remove', async (t) => {
  const r = new RmapSpace(10)
  t.equal(r.capacity, BLOCK, 'capacity rounds up to a block')
  t.equal(r.count(3), 0)
  t.same(r.mappings(3), [])
  r.add(3, 1, 100)
  r.add(3, 2, 100)
  r.add(3, 2, 200)
  t.equal(r.count(3), 3)
  t.same(r.mappings(3), [1, 100, 2, 100, 2, 200], 'first mapping, then the spilled ones in order')
  t.equal(r.remove(3, 1, 100), 2, 'removing the inline mapping')
  t.same(r.mappings(3), [2, 100, 2, 200], 'the next one is promoted')
  r.relocate(3, 2, 200, 300)
  t.same(r.mappings(3), [2, 100, 2, 300], 'relocating a spilled mapping')
  r.relocate(3, 2, 100, 50)
  t.same(r.mappings(3), [2, 50, 2, 300], 'relocating the inline mapping')
  t.equal(r.remove(3, 2, 300), 1)
  t.equal(r.remove(3, 2, 50), 0)
  t.same(r.mappings(3), [])
  t.throws(() => r.remove(3, 2, 50), /not mapped/, 'removing from an unmapped page')
  t.throws(() => r.relocate(3, 2, 50, 51), /not mapped/, 'relocating on an unmapped page')
  t.equal(r.count(3), 0, 'failed calls left the count alone')
  // The same (pid, vpn) twice is two mappings.
  r.add(4, 7, 9)
  r.add(4, 7, 9)
  t.equal(r.count(4), 2)
  t.equal(r.remove(4, 7, 9), 1)
  t.same(r.mappings(4), [7, 9])
})

t.test('ensure grows by blocks and keeps what is there', async (t) => {
  const r = new RmapSpace()
  t.equal(r.capacity, 0)
  r.ensure(1)
  t.equal(r.capacity, BLOCK)
  r.add(BLOCK - 1, 1, 1)
  r.ensure(BLOCK + 1)
  t.equal(r.capacity, 2 * BLOCK)
  r.add(BLOCK, 2, 2)
  r.ensure(5)
  t.equal(r.capacity, 2 * BLOCK, 'never shrinks')
  t.same(r.mappings(BLOCK - 1), [1, 1], 'the last page of the first block kept its mapping')
  t.same(r.mappings(BLOCK), [2, 2], 'the first page of the second block is separate')
  t.equal(r.count(BLOCK + 1), 0)
  t.ok(r.metadataBytes() >= 2 * BLOCK * 13, 'metadata accounts 13 bytes a page')
})

t.test('virtual page numbers up to 2^36 survive the split storage', async (t) => {
  const r = new RmapSpace(BLOCK)
  const high = 2 ** 36 - 1
  r.add(3, 7, high)
  r.add(3, 8, 2 ** 32)
  t.same(r.mappings(3), [7, high, 8, 2 ** 32])
  r.relocate(3, 7, high, 2 ** 35 + 5)
  t.same(r.first(3), [7, 2 ** 35 + 5])
  t.equal(r.remove(3, 7, 2 ** 35 + 5), 1)
  t.same(r.mappings(3), [8, 2 ** 32], 'the spilled mapping moved into the typed arrays intact')
})

/**
 * The CPU page table against a Map model: set/pte/pfn/setKind,
 * presentPages and leafCount (leaves dropped when empty), and
 * forEachPresent over dense and sparse windows, including callbacks that
 * clear or change the entry they are given. Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { LEAF_PAGES, PageTable } from '../../../../services/coordinator/mm/page-table.js'
import { DEVICE, MIGRATION, NONE, POISON, PTE_WRITE, SYSTEM, ZERO, withWrite } from '../../../../services/coordinator/mm/pte.js'

const SEED = Number(process.env.FC_SEED ?? 0x9a7e)
const RUNS = Number(process.env.FC_RUNS ?? 200)

const MAX_VPN = 2 ** 36 - 1 // 2^48 bytes of address space
const HUBS = [0, LEAF_PAGES - 3, 5 * LEAF_PAGES, 2 ** 30, MAX_VPN - 20]

const vpnArb = fc.tuple(fc.constantFrom(...HUBS), fc.integer({ min: -8, max: LEAF_PAGES + 8 }))
  .map(([h, d]) => Math.min(MAX_VPN, Math.max(0, h + d)))
const presentPteArb = fc.tuple(fc.constantFrom(ZERO, SYSTEM, DEVICE, MIGRATION, POISON), fc.boolean()).map(([k, w]) => withWrite(k, w))
const pfnArb = fc.oneof(fc.nat(1000), fc.constant(2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }))

type Visit = 'observe' | 'clearAll' | 'clearOdd' | 'dropWrite' | 'replace'
type Op =
  | { k: 'set', vpn: number, pte: number, pfn: number }
  | { k: 'unset', vpn: number }
  | { k: 'setKind', vpn: number, pte: number }
  | { k: 'each', a: number, len: number, visit: Visit }
  | { k: 'eachAll', visit: Visit }

interface Entry { pte: number, pfn: number }

t.test('PageTable against a Map model (property)', async (t) => {
  const visitArb = fc.constantFrom<Visit>('observe', 'clearAll', 'clearOdd', 'dropWrite', 'replace')
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 8, arbitrary: fc.record({ k: fc.constant('set' as const), vpn: vpnArb, pte: presentPteArb, pfn: pfnArb }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('unset' as const), vpn: vpnArb }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('setKind' as const), vpn: vpnArb, pte: presentPteArb }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('each' as const), a: vpnArb, len: fc.integer({ min: -1, max: 3 * LEAF_PAGES }), visit: visitArb }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('eachAll' as const), visit: visitArb }) }
  )
  const out = fc.check(fc.property(fc.array(opArb, { maxLength: 80, size: 'max' }), (ops) => {
    const pt = new PageTable()
    const model = new Map<number, Entry>()
    const touched = new Set<number>()
    const iterate = (a: number, b: number, visit: Visit): void => {
      const want = [...model.entries()].filter(([v]) => v >= a && v < b).sort(([x], [y]) => x - y)
      const seen: Array<[number, Entry]> = []
      pt.forEachPresent(a, b, (vpn, pte, pfn) => {
        seen.push([vpn, { pte, pfn }])
        switch (visit) {
          case 'observe': break
          case 'clearAll': pt.set(vpn, NONE, 0); model.delete(vpn); break
          case 'clearOdd': if (vpn % 2 === 1) { pt.set(vpn, NONE, 0); model.delete(vpn) } break
          case 'dropWrite': pt.setKind(vpn, pte & ~PTE_WRITE); model.set(vpn, { pte: pte & ~PTE_WRITE, pfn }); break
          case 'replace': pt.set(vpn, withWrite(SYSTEM, true), pfn + 1); model.set(vpn, { pte: withWrite(SYSTEM, true), pfn: (pfn + 1) % 2 ** 32 }); break
        }
      })
      assert.deepEqual(seen, want, `forEachPresent(${a}, ${b}, ${visit}) visits every present entry once, ascending`)
    }
    for (const [i, op] of ops.entries()) {
      switch (op.k) {
        case 'set':
          pt.set(op.vpn, op.pte, op.pfn)
          model.set(op.vpn, { pte: op.pte, pfn: op.pfn })
          touched.add(op.vpn)
          break
        case 'unset':
          pt.set(op.vpn, NONE, 123)
          model.delete(op.vpn)
          touched.add(op.vpn)
          break
        case 'setKind': {
          const e = model.get(op.vpn)
          if (e === undefined) {
            assert.throws(() => pt.setKind(op.vpn, op.pte), /empty pte/)
          } else {
            pt.setKind(op.vpn, op.pte)
            model.set(op.vpn, { pte: op.pte, pfn: e.pfn })
          }
          break
        }
        case 'each':
          iterate(op.a, op.a + op.len, op.visit)
          break
        case 'eachAll':
          iterate(0, MAX_VPN + 1, op.visit)
          break
      }
      assert.equal(pt.presentPages, model.size, `presentPages after op ${i}`)
      assert.equal(pt.leafCount, new Set([...model.keys()].map((v) => Math.floor(v / LEAF_PAGES))).size, `empty leaves are dropped (op ${i})`)
    }
    for (const vpn of [...touched, ...model.keys()]) {
      const e = model.get(vpn)
      assert.equal(pt.pte(vpn), e?.pte ?? NONE, `pte(${vpn})`)
      assert.equal(pt.pfn(vpn), e?.pfn ?? 0, `pfn(${vpn})`)
    }
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `PageTable matches the model (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

t.test('examples', async (t) => {
  const pt = new PageTable()
  t.equal(pt.pte(7), NONE)
  t.equal(pt.pfn(7), 0)
  pt.set(7, NONE, 5)
  t.equal(pt.leafCount, 0, 'writing NONE to an absent leaf allocates nothing')
  pt.set(7, withWrite(SYSTEM, true), 2 ** 32 - 1)
  t.equal(pt.pfn(7), 2 ** 32 - 1, 'pfns are 32-bit')
  t.equal(pt.pte(7), SYSTEM | PTE_WRITE)
  pt.setKind(7, SYSTEM)
  t.equal(pt.pte(7), SYSTEM, 'setKind drops write')
  t.equal(pt.pfn(7), 2 ** 32 - 1, 'and keeps the pfn')
  pt.set(LEAF_PAGES, ZERO, 0)
  pt.set(MAX_VPN, DEVICE, 9)
  t.equal(pt.leafCount, 3)
  t.equal(pt.presentPages, 3)
  const seen: number[] = []
  pt.forEachPresent(0, MAX_VPN + 1, (vpn) => { seen.push(vpn); pt.set(vpn, NONE, 0) })
  t.same(seen, [7, LEAF_PAGES, MAX_VPN], 'ascending over sparse leaves, clearing as it goes')
  t.equal(pt.presentPages, 0)
  t.equal(pt.leafCount, 0, 'every leaf dropped')
  t.equal(pt.pfn(7), 0, 'a cleared entry has no pfn')
  let calls = 0
  pt.forEachPresent(10, 10, () => { calls++ })
  pt.forEachPresent(10, 5, () => { calls++ })
  t.equal(calls, 0, 'empty and inverted windows visit nothing')
  t.throws(() => pt.setKind(7, SYSTEM), /empty pte/)
  // Clearing the last entry of a leaf mid-iteration, then the next leaf is still visited.
  pt.set(LEAF_PAGES - 1, SYSTEM, 1)
  pt.set(LEAF_PAGES, SYSTEM, 2)
  pt.set(LEAF_PAGES + 1, SYSTEM, 3)
  const order: number[] = []
  pt.forEachPresent(0, 2 * LEAF_PAGES, (vpn) => { order.push(vpn); if (vpn !== LEAF_PAGES + 1) pt.set(vpn, NONE, 0) })
  t.same(order, [LEAF_PAGES - 1, LEAF_PAGES, LEAF_PAGES + 1])
  t.equal(pt.presentPages, 1)
  t.equal(pt.leafCount, 1)
  t.ok(pt.metadataBytes() > LEAF_PAGES * 5, 'metadata counts 5 bytes a page per leaf')
})

/**
 * The GPU page table and the page-address encodings it stores: encode/decode
 * round trips (property), zap counts and mappedPages bookkeeping against a
 * Map model (property), and examples. Seeded (FC_SEED).
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { GpuPageTable } from '../../../../services/gpu/svm/gpu-page-table.js'
import {
  DMA_NONE, PROTO_DRIVER, PROTO_P2P, PROTO_SYSTEM, dmaEncode, dmaId, dmaProto,
  pteAtomic, pteEncode, pteId, pteProto, pteValid, pteWritable
} from '../../../../services/gpu/svm/page-addr.js'
import { DEVICE_PFN_LIMIT, MAX_GPUS, deviceId } from '../../../../shared/svm/page-id.js'

const SEED = Number(process.env.FC_SEED ?? 0x9e7)
const RUNS = Number(process.env.FC_RUNS ?? 300)

function holds<T> (t: Test, name: string, out: fc.RunDetails<T>): void {
  t.notOk(out.failed, `${name} (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
}

// Page ids: system frames and device page ids (gpu * 2^24 + pfn) stay below
// 2^32; test well beyond, up to 2^44, so the arithmetic has headroom.
const idArb = fc.oneof(
  fc.nat(1000),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  fc.tuple(fc.nat(MAX_GPUS - 1), fc.nat(DEVICE_PFN_LIMIT - 1)).map(([g, p]) => deviceId(g, p)),
  fc.integer({ min: 0, max: 2 ** 44 })
)
const protoArb = fc.constantFrom(PROTO_SYSTEM, PROTO_DRIVER, PROTO_P2P)

t.test('page-addr encodings round trip (property)', async (t) => {
  holds(t, 'pteEncode decodes to its parts', fc.check(fc.property(idArb, protoArb, fc.boolean(), fc.boolean(), (id, proto, w, a) => {
    const e = pteEncode(id, proto, w, a)
    assert.ok(Number.isSafeInteger(e) && e > 0, 'a positive safe integer')
    assert.equal(pteValid(e), true)
    assert.equal(pteId(e), id)
    assert.equal(pteProto(e), proto)
    assert.equal(pteWritable(e), w)
    assert.equal(pteAtomic(e), a)
  }), { seed: SEED, numRuns: RUNS * 3 }))
  holds(t, 'dmaEncode decodes to its parts and never collides with DMA_NONE', fc.check(fc.property(idArb, protoArb, (id, proto) => {
    const a = dmaEncode(id, proto)
    assert.notEqual(a, DMA_NONE)
    assert.ok(a >= 0)
    assert.equal(dmaId(a), id)
    assert.equal(dmaProto(a), proto)
  }), { seed: SEED, numRuns: RUNS * 3 }))
  holds(t, 'distinct inputs give distinct PTEs', fc.check(fc.property(
    fc.tuple(idArb, protoArb, fc.boolean(), fc.boolean()), fc.tuple(idArb, protoArb, fc.boolean(), fc.boolean()),
    (x, y) => {
      if (JSON.stringify(x) === JSON.stringify(y)) return
      assert.notEqual(pteEncode(...x), pteEncode(...y))
    }), { seed: SEED, numRuns: RUNS * 3 }))
})

t.test('page-addr examples', async (t) => {
  t.equal(pteValid(0), false, '0 is no entry')
  t.equal(pteEncode(0, PROTO_SYSTEM, false, false), 1, 'the smallest entry is still valid')
  const e = pteEncode(2 ** 40 + 3, PROTO_P2P, true, false)
  t.same([pteId(e), pteProto(e), pteWritable(e), pteAtomic(e)], [2 ** 40 + 3, PROTO_P2P, true, false], 'bit tests survive values above 2^32')
  t.equal(dmaEncode(5, PROTO_DRIVER), 21)
  t.equal(DMA_NONE, -1)
})

type Op = { k: 'set', vpn: number, entry: number } | { k: 'zap', a: number, b: number } | { k: 'clear' }

t.test('GpuPageTable against a Map model (property)', async (t) => {
  // vpns cluster in a few leaves far apart, so leaf boundaries and empty leaves are hit.
  const hubs = [0, 511, 512, 4096, 2 ** 35 - 600]
  const vpnArb = fc.tuple(fc.constantFrom(...hubs), fc.integer({ min: -40, max: 600 })).map(([h, d]) => Math.max(0, h + d))
  const entryArb = fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.tuple(idArb, protoArb, fc.boolean(), fc.boolean()).map((x) => pteEncode(...x)) }
  )
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 8, arbitrary: fc.record({ k: fc.constant('set' as const), vpn: vpnArb, entry: entryArb }) },
    // Zap windows as the driver uses them (one range, at most 2 MiB = 512
    // pages), plus a little: zap walks every leaf slot of its window.
    { weight: 3, arbitrary: fc.record({ k: fc.constant('zap' as const), a: vpnArb, b: fc.integer({ min: -1, max: 1100 }) }).map((z) => ({ ...z, b: z.a + z.b })) },
    { weight: 1, arbitrary: fc.constant({ k: 'clear' as const }) }
  )
  holds(t, 'get, zap counts and mappedPages follow the model', fc.check(fc.property(fc.array(opArb, { maxLength: 120, size: 'max' }), (ops) => {
    const pt = new GpuPageTable()
    const model = new Map<number, number>()
    const touched = new Set<number>()
    for (const op of ops) {
      if (op.k === 'set') {
        pt.set(op.vpn, op.entry)
        touched.add(op.vpn)
        if (op.entry === 0) model.delete(op.vpn)
        else model.set(op.vpn, op.entry)
      } else if (op.k === 'zap') {
        const lo = Math.min(op.a, op.b)
        const hi = Math.max(op.a, op.b)
        let want = 0
        for (const vpn of [...model.keys()]) if (vpn >= lo && vpn < hi) { model.delete(vpn); want++ }
        assert.equal(pt.zap(lo, hi), want, `zap(${lo}, ${hi}) counts the present entries`)
      } else {
        pt.clear()
        model.clear()
      }
      assert.equal(pt.mappedPages, model.size, `mappedPages after ${JSON.stringify(op)}`)
    }
    for (const vpn of touched) assert.equal(pt.get(vpn), model.get(vpn) ?? 0, `get(${vpn})`)
    for (const h of hubs) assert.equal(pt.get(h + 1000), model.get(h + 1000) ?? 0)
  }), { seed: SEED, numRuns: RUNS }))
})

t.test('GpuPageTable examples', async (t) => {
  const pt = new GpuPageTable()
  t.equal(pt.get(123), 0, 'an empty table maps nothing')
  pt.set(123, 0)
  t.equal(pt.mappedPages, 0, 'writing 0 to an absent entry maps nothing')
  const e1 = pteEncode(7, PROTO_DRIVER, true, true)
  const e2 = pteEncode(8, PROTO_SYSTEM, false, false)
  pt.set(510, e1)
  pt.set(511, e1)
  pt.set(512, e2)
  t.equal(pt.mappedPages, 3)
  pt.set(511, e2)
  t.equal(pt.mappedPages, 3, 'overwriting a present entry keeps the count')
  t.equal(pt.get(511), e2)
  t.equal(pt.zap(0, 511), 1, 'zap is end-exclusive')
  t.equal(pt.get(510), 0)
  t.equal(pt.zap(511, 513), 2, 'zap across a leaf boundary')
  t.equal(pt.mappedPages, 0)
  t.equal(pt.zap(0, 2 ** 20), 0, 'zapping nothing')
  pt.set(2 ** 35 - 1, e1)
  t.equal(pt.get(2 ** 35 - 1), e1, 'the top page of the VM')
  t.equal(pt.zap(2 ** 35 - 512, 2 ** 35), 1)
  pt.set(5, e1)
  pt.set(5, 0)
  t.equal(pt.mappedPages, 0, 'unmapping by writing 0')
  pt.set(6, e2)
  pt.clear()
  t.equal(pt.mappedPages, 0)
  t.equal(pt.get(6), 0, 'clear empties the table')
  t.equal(pt.zap(10, 5), 0, 'an inverted window zaps nothing')
})

/**
 * Vram: lazily backed 2 MiB chunks. Backing grows on the first write only,
 * unbacked pages read as zeros, release drops the backing (data reads back
 * as zeros), and span() refuses to cross a chunk. A model-based property
 * test checks bytes and backing against a Map of written pages. Seeded
 * (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { Vram } from '../../../../services/gpu/pagemap/vram.js'
import { PAGE_SIZE, PAGES_PER_2M, SZ_2M } from '../../../../shared/units.js'

const SEED = Number(process.env.FC_SEED ?? 0x7a3)
const RUNS = Number(process.env.FC_RUNS ?? 150)

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0)

t.test('lazy backing: reads and zeroing do not back, the first write does', async (t) => {
  const v = new Vram(4 * SZ_2M)
  t.equal(v.pages, 4 * PAGES_PER_2M)
  t.equal(v.backedBytes, 0, 'nothing backed at first')
  const r = v.readView(5)
  t.equal(r.byteLength, PAGE_SIZE)
  t.ok(isZero(r), 'an unbacked page reads as zeros')
  v.zero(5)
  t.equal(v.backedBytes, 0, 'zeroing an unbacked page backs nothing')
  t.ok(isZero(v.readView(PAGES_PER_2M * 3 + 7)))
  t.equal(v.backedBytes, 0, 'reads anywhere back nothing')

  const p = v.page(5)
  t.equal(v.backedBytes, SZ_2M, 'the first write view backs one 2 MiB chunk')
  p.fill(0xab)
  v.page(6).fill(0xcd)
  v.page(PAGES_PER_2M - 1).fill(1)
  t.equal(v.backedBytes, SZ_2M, 'pages of the same chunk share the backing')
  t.ok(v.readView(5).every((x) => x === 0xab), 'the write is read back')
  t.ok(v.readView(6).every((x) => x === 0xcd), 'neighbouring pages are separate')
  t.ok(isZero(v.readView(4)), 'untouched pages of a backed chunk read zeros')
  v.page(PAGES_PER_2M).fill(2)
  t.equal(v.backedBytes, 2 * SZ_2M, 'a page of the next chunk backs it')

  v.zero(5)
  t.ok(isZero(v.readView(5)), 'zero() clears a backed page')
  t.ok(v.readView(6).every((x) => x === 0xcd), 'and only that page')

  v.release(3)
  t.equal(v.backedBytes, SZ_2M, 'release drops the chunk holding the pfn')
  t.ok(isZero(v.readView(6)), 'released data reads back as zeros')
  t.ok(isZero(v.readView(PAGES_PER_2M - 1)))
  t.ok(v.readView(PAGES_PER_2M).every((x) => x === 2), 'the other chunk is untouched')
  v.release(3)
  t.equal(v.backedBytes, SZ_2M, 'releasing an unbacked chunk is a no-op')
  t.ok(isZero(v.page(6)), 'a re-backed chunk starts zeroed')
  t.equal(v.backedBytes, 2 * SZ_2M)
})

t.test('span(): a writable view inside one 2 MiB chunk, never across', async (t) => {
  const v = new Vram(2 * SZ_2M)
  const s = v.span(PAGES_PER_2M - 4, 4)
  t.equal(s.byteLength, 4 * PAGE_SIZE, 'the last four pages of a chunk')
  s.fill(7)
  for (let i = 0; i < 4; i++) t.ok(v.readView(PAGES_PER_2M - 4 + i).every((x) => x === 7), `span writes reach page ${i}`)
  t.ok(isZero(v.readView(PAGES_PER_2M - 5)), 'and nothing before')
  t.equal(v.span(0, PAGES_PER_2M).byteLength, SZ_2M, 'a whole chunk')
  v.readView(PAGES_PER_2M) // nothing
  const before = v.backedBytes
  t.throws(() => v.span(PAGES_PER_2M - 1, 2), RangeError, 'crossing by one page')
  t.throws(() => v.span(PAGES_PER_2M + 1, PAGES_PER_2M), RangeError, 'a 2 MiB span not aligned to a chunk')
  t.throws(() => v.span(0, PAGES_PER_2M + 1), RangeError, 'longer than a chunk')
  t.equal(v.backedBytes, before, 'a refused span backs nothing')
  t.ok(isZero(v.readView(PAGES_PER_2M)), 'and writes nothing')
  const s2 = v.span(PAGES_PER_2M + 10, 1)
  s2[0] = 9
  t.equal(v.readView(PAGES_PER_2M + 10)[0], 9)
  t.equal(v.backedBytes, 2 * SZ_2M)
})

type Op =
  | { k: 'write', pfn: number, byte: number }
  | { k: 'span', pfn: number, n: number, byte: number }
  | { k: 'zero', pfn: number }
  | { k: 'release', pfn: number }
  | { k: 'read', pfn: number }

t.test('model: bytes and backing follow a Map of written pages (property)', async (t) => {
  const CHUNKS = 3
  const PAGES = CHUNKS * PAGES_PER_2M
  const pfnArb = fc.oneof(fc.nat(PAGES - 1), fc.constantFrom(0, PAGES_PER_2M - 1, PAGES_PER_2M, PAGES - 1))
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ k: fc.constant('write' as const), pfn: pfnArb, byte: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ k: fc.constant('span' as const), pfn: pfnArb, n: fc.integer({ min: 1, max: 8 }), byte: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ k: fc.constant('zero' as const), pfn: pfnArb }),
    fc.record({ k: fc.constant('release' as const), pfn: pfnArb }),
    fc.record({ k: fc.constant('read' as const), pfn: pfnArb })
  )
  const out = fc.check(fc.property(fc.array(opArb, { maxLength: 60, size: 'max' }), (ops) => {
    const v = new Vram(CHUNKS * SZ_2M)
    const data = new Map<number, number>() // pfn -> fill byte (0 = zeros)
    const backed = new Set<number>()
    const chunkOf = (pfn: number): number => Math.floor(pfn / PAGES_PER_2M)
    for (const op of ops) {
      switch (op.k) {
        case 'write':
          v.page(op.pfn).fill(op.byte)
          backed.add(chunkOf(op.pfn))
          data.set(op.pfn, op.byte)
          break
        case 'span': {
          const crosses = (op.pfn % PAGES_PER_2M) + op.n > PAGES_PER_2M
          if (crosses) {
            assert.throws(() => v.span(op.pfn, op.n), RangeError)
            break
          }
          v.span(op.pfn, op.n).fill(op.byte)
          backed.add(chunkOf(op.pfn))
          for (let i = 0; i < op.n; i++) data.set(op.pfn + i, op.byte)
          break
        }
        case 'zero':
          v.zero(op.pfn)
          data.delete(op.pfn)
          break
        case 'release': {
          v.release(op.pfn)
          const c = chunkOf(op.pfn)
          backed.delete(c)
          for (const pfn of [...data.keys()]) if (chunkOf(pfn) === c) data.delete(pfn)
          break
        }
        case 'read': {
          const want = data.get(op.pfn) ?? 0
          assert.ok(v.readView(op.pfn).every((x) => x === want), `page ${op.pfn} reads ${want}`)
          break
        }
      }
      assert.equal(v.backedBytes, backed.size * SZ_2M, `backed after ${JSON.stringify(op)}`)
    }
    for (let pfn = 0; pfn < PAGES; pfn += 1) {
      const want = data.get(pfn) ?? 0
      const page = v.readView(pfn)
      if (page[0] !== want || page[PAGE_SIZE - 1] !== want) assert.fail(`final sweep: page ${pfn} should read ${want}`)
    }
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `Vram matches the model (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

/**
 * BuddyAllocator against a per-page model: random alloc(order 0..9) / free
 * sequences keep blocks disjoint and aligned, the byte counts and the
 * largest free block right, fail only when no aligned free block of that
 * order exists, report each 2 MiB block once when it is wholly free, and
 * merge everything back after freeing all. Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { BuddyAllocator, MAX_ORDER } from '../../../../services/gpu/pagemap/buddy-allocator.js'
import { PAGE_SIZE, PAGES_PER_2M, SZ_2M } from '../../../../shared/units.js'

const SEED = Number(process.env.FC_SEED ?? 0xb0dd1)
const RUNS = Number(process.env.FC_RUNS ?? 150)

class Model {
  readonly used: Uint8Array
  readonly blocks = new Map<number, number>() // pfn -> order
  constructor (readonly pages: number) {
    this.used = new Uint8Array(pages)
  }

  get usedPages (): number {
    let n = 0
    for (const o of this.blocks.values()) n += 1 << o
    return n
  }

  isFree (pfn: number, n: number): boolean {
    for (let i = pfn; i < pfn + n; i++) if (this.used[i] !== 0) return false
    return true
  }

  /** Is there a size-aligned, wholly free run of 2^order pages? */
  canCarve (order: number): boolean {
    const n = 1 << order
    for (let pfn = 0; pfn < this.pages; pfn += n) if (this.isFree(pfn, n)) return true
    return false
  }

  largestFreeBytes (): number {
    for (let o = MAX_ORDER; o >= 0; o--) if (this.canCarve(o)) return (1 << o) * PAGE_SIZE
    return 0
  }

  mark (pfn: number, order: number, v: number): void {
    this.used.fill(v, pfn, pfn + (1 << order))
  }
}

type Op = { k: 'alloc', order: number } | { k: 'free', pick: number }
const orderArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 3, arbitrary: fc.integer({ min: 4, max: 8 }) },
  { weight: 1, arbitrary: fc.constant(MAX_ORDER) }
)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('alloc' as const), order: orderArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('free' as const), pick: fc.nat() }) }
)

function run (blocks2m: number, ops: Op[]): void {
  const pages = blocks2m * PAGES_PER_2M
  const freed: number[] = []
  const a = new BuddyAllocator(pages, (pfn) => freed.push(pfn))
  const m = new Model(pages)
  const check = (when: string): void => {
    assert.equal(a.usedBytes, m.usedPages * PAGE_SIZE, `usedBytes ${when}`)
    assert.equal(a.freeBytes + a.usedBytes, pages * PAGE_SIZE, `free + used = total ${when}`)
    assert.equal(a.largestFreeBytes, m.largestFreeBytes(), `largestFree ${when}`)
  }
  for (const [i, op] of ops.entries()) {
    const whollyFreeBefore = new Set<number>()
    for (let b = 0; b < blocks2m; b++) if (m.isFree(b * PAGES_PER_2M, PAGES_PER_2M)) whollyFreeBefore.add(b * PAGES_PER_2M)
    freed.length = 0
    if (op.k === 'alloc') {
      const pfn = a.alloc(op.order)
      if (pfn === null) {
        assert.equal(m.canCarve(op.order), false, `alloc(${op.order}) failed although an aligned free block exists (op ${i})`)
      } else {
        const n = 1 << op.order
        assert.ok(Number.isInteger(pfn) && pfn >= 0 && pfn + n <= pages, `block inside VRAM (op ${i})`)
        assert.equal(pfn % n, 0, `block aligned to its size (op ${i})`)
        assert.ok(m.isFree(pfn, n), `block overlaps nothing in use (op ${i})`)
        assert.equal(a.orderOf(pfn), op.order)
        m.mark(pfn, op.order, 1)
        m.blocks.set(pfn, op.order)
      }
      assert.deepEqual(freed, [], 'alloc reports no free block')
    } else {
      if (m.blocks.size === 0) continue
      const keys = [...m.blocks.keys()]
      const pfn = keys[op.pick % keys.length] as number
      const order = m.blocks.get(pfn) as number
      a.free(pfn)
      m.blocks.delete(pfn)
      m.mark(pfn, order, 0)
      assert.equal(a.orderOf(pfn), -1)
      // Exactly the 2 MiB blocks that became wholly free by this free are reported.
      const expect: number[] = []
      for (let b = 0; b < blocks2m; b++) {
        const head = b * PAGES_PER_2M
        if (!whollyFreeBefore.has(head) && m.isFree(head, PAGES_PER_2M)) expect.push(head)
      }
      assert.deepEqual(freed, expect, `onBlockFree after free(${pfn}) (op ${i})`)
    }
    check(`after op ${i}`)
  }
  // Free everything: all merges back to whole 2 MiB blocks.
  const reported = new Set<number>()
  for (const pfn of [...m.blocks.keys()]) {
    freed.length = 0
    a.free(pfn)
    for (const f of freed) {
      assert.ok(!reported.has(f), `2 MiB block ${f} reported twice`)
      reported.add(f)
    }
  }
  assert.equal(a.usedBytes, 0)
  assert.equal(a.freeBytes, pages * PAGE_SIZE)
  assert.equal(a.largestFreeBytes, SZ_2M)
  // The blocks in use at the end are reported as they free up; the rest were never split again.
  const got: number[] = []
  for (let b = 0; b < blocks2m; b++) {
    const pfn = a.alloc(MAX_ORDER)
    assert.notEqual(pfn, null, 'every 2 MiB block is whole again')
    got.push(pfn as number)
  }
  assert.equal(a.alloc(0), null, 'and then VRAM is full')
  assert.deepEqual(got.sort((x, y) => x - y), Array.from({ length: blocks2m }, (_, b) => b * PAGES_PER_2M))
}

t.test('random alloc/free sequences match the model (property)', async (t) => {
  const out = fc.check(fc.property(fc.integer({ min: 1, max: 3 }), fc.array(opArb, { minLength: 1, maxLength: 250, size: 'max' }), (blocks, ops) => {
    run(blocks, ops)
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `the allocator matches the model (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

t.test('small-block pressure: fill with order 0, free every other page', async (t) => {
  const freed: number[] = []
  const a = new BuddyAllocator(PAGES_PER_2M, (pfn) => freed.push(pfn))
  const pfns: number[] = []
  for (;;) {
    const p = a.alloc(0)
    if (p === null) break
    pfns.push(p)
  }
  t.equal(pfns.length, PAGES_PER_2M, 'every page allocated once')
  t.equal(new Set(pfns).size, PAGES_PER_2M, 'no page twice')
  t.equal(a.largestFreeBytes, 0)
  for (const p of pfns) if (p % 2 === 0) a.free(p)
  t.equal(a.freeBytes, (PAGES_PER_2M / 2) * PAGE_SIZE)
  t.equal(a.largestFreeBytes, PAGE_SIZE, 'fragmented: no two buddies free')
  t.equal(a.alloc(1), null, 'no order-1 block although half the pages are free')
  t.same(freed, [])
  for (const p of pfns) if (p % 2 === 1) a.free(p)
  t.same(freed, [0], 'the 2 MiB block is reported once, when its last page is freed')
  t.equal(a.largestFreeBytes, SZ_2M)
})

t.test('construction and misuse', async (t) => {
  t.throws(() => new BuddyAllocator(PAGES_PER_2M + 1), RangeError, 'not a whole number of 2 MiB blocks')
  const freed: number[] = []
  const a = new BuddyAllocator(2 * PAGES_PER_2M, (pfn) => freed.push(pfn))
  t.equal(a.freeBytes, 2 * SZ_2M)
  t.equal(a.usedBytes, 0)
  t.equal(a.largestFreeBytes, SZ_2M)
  t.same(freed, [], 'initially free blocks are not reported')
  t.equal(a.alloc(MAX_ORDER + 1), null, 'an order above 2 MiB cannot be carved')
  const p = a.alloc(4) as number
  t.equal(a.orderOf(p), 4)
  t.throws(() => a.free(p + 1), /not an allocated block/, 'freeing inside a block')
  a.free(p)
  t.throws(() => a.free(p), /not an allocated block/, 'double free')
  t.equal(a.freeBytes, 2 * SZ_2M)
  t.same(freed, [p], 'the split 2 MiB block reported once merged')
  for (const bad of [2 * PAGES_PER_2M, 2 * PAGES_PER_2M + 5, -1, 1.5]) {
    t.throws(() => a.free(bad), /not an allocated block/, `free(${bad}) outside the allocator throws`)
  }
  t.equal(a.freeBytes, 2 * SZ_2M, 'and leaves the accounting alone')
  t.equal(a.largestFreeBytes, SZ_2M)
  t.not(a.alloc(MAX_ORDER), null)
  t.not(a.alloc(MAX_ORDER), null)
  t.equal(a.alloc(0), null, 'exactly the two blocks are there')
})

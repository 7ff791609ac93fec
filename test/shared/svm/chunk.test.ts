/**
 * selectChunk (drm_gpusvm_range_chunk_size): table tests at every boundary,
 * then a property test against a literal transcription of the kernel loop
 * (goto retry and all). Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { CHECK_PAGES_THRESHOLD, CHUNK_SIZES, candidateWindow, selectChunk, type ChunkQuery } from '../../../shared/svm/chunk.js'
import { SZ_2M, SZ_4K, SZ_64K, USER_SPACE_END } from '../../../shared/units.js'

const SEED = Number(process.env.FC_SEED ?? 0xc4c)
const RUNS = Number(process.env.FC_RUNS ?? 2000)

const SZ_512M = 512 * 1024 * 1024
const B = 0x7e0000000000 // 512 MiB aligned, high in user space
const A = B + SZ_2M + 0x12345 // the fault address: inside the second 2 MiB block
const W2 = { start: B + SZ_2M, end: B + 2 * SZ_2M }
const W64 = { start: B + SZ_2M + 0x10000, end: B + SZ_2M + 0x20000 }
const W4 = { start: B + SZ_2M + 0x12000, end: B + SZ_2M + 0x13000 }

interface Scenario {
  addr?: number
  vma?: [number, number]
  notifier?: [number, number]
  gva?: [number, number]
  threshold?: number
  sizes?: readonly number[]
  ranges?: Array<[number, number]>
  absent?: number[] // addresses of pages the CPU has not faulted in
}

function query (s: Scenario): ChunkQuery {
  const ranges = s.ranges ?? []
  const absent = s.absent ?? []
  return {
    addr: s.addr ?? A,
    vmaStart: (s.vma ?? [B, B + 8 * SZ_2M])[0],
    vmaEnd: (s.vma ?? [B, B + 8 * SZ_2M])[1],
    notifierStart: (s.notifier ?? [B, B + SZ_512M])[0],
    notifierEnd: (s.notifier ?? [B, B + SZ_512M])[1],
    gvaStart: (s.gva ?? [0, USER_SPACE_END])[0],
    gvaEnd: (s.gva ?? [0, USER_SPACE_END])[1],
    checkPagesThreshold: s.threshold ?? CHECK_PAGES_THRESHOLD,
    ...(s.sizes !== undefined ? { chunkSizes: s.sizes } : {}),
    overlapsRange: (start, end) => ranges.some(([rs, re]) => rs < end && start < re),
    allPagesPresent: (start, end) => !absent.some((p) => p >= start && p < end)
  }
}

const win = (w: { start: number, end: number }): { start: number, end: number } => ({ start: w.start, end: w.end })

t.test('boundary table', async (t) => {
  const table: Array<[string, Scenario, { start: number, end: number } | null]> = [
    ['everything wide: 2M', {}, win(W2)],
    // CPU VMA edges.
    ['VMA starts at the 2M window start', { vma: [W2.start, B + 8 * SZ_2M] }, win(W2)],
    ['VMA starts one page into the 2M window', { vma: [W2.start + SZ_4K, B + 8 * SZ_2M] }, win(W64)],
    ['VMA ends at the 2M window end', { vma: [B, W2.end] }, win(W2)],
    ['VMA ends one page short of the 2M window end', { vma: [B, W2.end - SZ_4K] }, win(W64)],
    ['VMA is exactly the 64K window', { vma: [W64.start, W64.end] }, win(W64)],
    ['VMA is the 64K window less its last page', { vma: [W64.start, W64.end - SZ_4K] }, win(W4)],
    ['VMA is the 64K window less its first page', { vma: [W64.start + SZ_4K, W64.end] }, win(W4)],
    ['VMA is exactly the faulting page', { vma: [W4.start, W4.end] }, win(W4)],
    ['VMA ends at the faulting page', { vma: [B, W4.start] }, null],
    ['VMA starts after the faulting page', { vma: [W4.end, B + 8 * SZ_2M] }, null],
    // Notifier edges.
    ['notifier starts at the 2M window', { notifier: [W2.start, W2.start + SZ_512M] }, win(W2)],
    ['notifier starts one page into it', { notifier: [W2.start + SZ_4K, W2.start + SZ_512M] }, win(W64)],
    ['notifier ends at the 2M window end', { notifier: [B, W2.end] }, win(W2)],
    ['notifier ends a page short', { notifier: [B, W2.end - SZ_4K] }, win(W64)],
    ['notifier narrower than 64K around the fault', { notifier: [W4.start, W4.start + 2 * SZ_4K] }, win(W4)],
    ['notifier ends at the faulting page', { notifier: [B, W4.start] }, null],
    // GPU VMA edges.
    ['gva starts at the 2M window', { gva: [W2.start, USER_SPACE_END] }, win(W2)],
    ['gva starts a page into it', { gva: [W2.start + SZ_4K, USER_SPACE_END] }, win(W64)],
    ['gva ends at the 2M window end', { gva: [0, W2.end] }, win(W2)],
    ['gva ends a page short', { gva: [0, W2.end - SZ_4K] }, win(W64)],
    ['gva starts a page into the 64K window', { gva: [W64.start + SZ_4K, USER_SPACE_END] }, win(W4)],
    ['gva ends before the faulting page', { gva: [0, W4.start] }, null],
    ['gva is one byte short of the faulting page', { gva: [W4.start, W4.end - 1] }, null],
    // The 64K check-pages threshold.
    ['64K with a page absent falls to 4K', { vma: [W64.start, B + 8 * SZ_2M], absent: [W64.end - SZ_4K] }, win(W4)],
    ['64K with the faulting page itself absent falls to 4K', { vma: [W64.start, B + 8 * SZ_2M], absent: [W4.start] }, win(W4)],
    ['64K with a page absent just outside it stays 64K', { vma: [W64.start - SZ_4K, B + 8 * SZ_2M], absent: [W64.start - SZ_4K, W64.end] }, win(W64)],
    ['2M is above the threshold: absent pages do not matter', { absent: [W2.start, W4.start, W2.end - SZ_4K] }, win(W2)],
    ['threshold 0 (integrated GPU): 64K despite an absent page', { vma: [W64.start, B + 8 * SZ_2M], absent: [W64.start], threshold: 0 }, win(W64)],
    ['threshold 2M: an absent page demotes 2M and 64K', { absent: [W4.start], threshold: SZ_2M }, win(W4)],
    ['threshold 2M: absent outside the 64K window demotes only 2M', { absent: [W2.start], threshold: SZ_2M }, win(W64)],
    ['threshold just below 64K: 64K not checked', { vma: [W64.start, B + 8 * SZ_2M], absent: [W64.start], threshold: SZ_64K - 1 }, win(W64)],
    // Existing ranges.
    ['a range overlapping the 2M window only: 64K', { ranges: [[W2.start, W2.start + SZ_64K]] }, win(W64)],
    ['a range overlapping the 64K window: 4K', { ranges: [[W64.end - SZ_4K, W64.end + SZ_64K]] }, win(W4)],
    ['a range over the faulting page does not stop 4K', { ranges: [[W4.start, W4.end]] }, win(W4)],
    ['a range ending at the 2M window start is no overlap', { ranges: [[W2.start - SZ_2M, W2.start]] }, win(W2)],
    ['a range starting at the 2M window end is no overlap', { ranges: [[W2.end, W2.end + SZ_2M]] }, win(W2)],
    ['a range ending at the 64K window start', { ranges: [[W2.start, W64.start]] }, win(W64)],
    ['a range starting at the 64K window end', { ranges: [[W64.end, W64.end + SZ_4K]] }, win(W64)],
    ['a range blocks 2M and a page blocks 64K', { ranges: [[W2.start, W2.start + SZ_4K]], absent: [W64.start] }, win(W4)],
    // Fault address at the first and last byte of a chunk.
    ['fault at the first byte of the 2M chunk', { addr: W2.start }, win(W2)],
    ['fault at the last byte of the 2M chunk', { addr: W2.end - 1 }, win(W2)],
    ['fault at the first byte of the next chunk', { addr: W2.end }, { start: W2.end, end: W2.end + SZ_2M }],
    ['fault at the last byte of a 64K chunk', { addr: W64.end - 1, vma: [W64.start, W64.end] }, win(W64)],
    ['fault at the first byte of a 64K chunk', { addr: W64.start, vma: [W64.start, W64.end] }, win(W64)],
    ['fault at the last byte of a page', { addr: W4.end - 1, vma: [W4.start, W4.end] }, win(W4)],
    ['fault at address 0', { addr: 0, vma: [0, SZ_2M], notifier: [0, SZ_512M] }, { start: 0, end: SZ_2M }],
    ['fault at the last byte of user space', { addr: USER_SPACE_END - 1, vma: [USER_SPACE_END - SZ_2M, USER_SPACE_END], notifier: [USER_SPACE_END - SZ_512M, USER_SPACE_END] },
      { start: USER_SPACE_END - SZ_2M, end: USER_SPACE_END }],
    // Chunk size tables.
    ['sizes [64K, 4K]', { sizes: [SZ_64K, SZ_4K] }, win(W64)],
    ['sizes [2M, 4K] with 2M not fitting', { sizes: [SZ_2M, SZ_4K], vma: [W2.start + SZ_4K, B + 8 * SZ_2M] }, win(W4)],
    ['sizes [2M] only, not fitting: nothing', { sizes: [SZ_2M], vma: [W2.start + SZ_4K, B + 8 * SZ_2M] }, null],
    ['sizes [2M] only, a range in the way: nothing', { sizes: [SZ_2M], ranges: [[W2.start, W2.start + SZ_4K]] }, null],
    // Nothing fits.
    ['fault outside every bound', { addr: B - 1 }, null]
  ]
  for (const [what, s, want] of table) t.same(selectChunk(query(s)), want, what)
})

t.test('only the chunks above 4K consult the callbacks, and only as needed', async (t) => {
  const calls: string[] = []
  const q: ChunkQuery = {
    ...query({ vma: [W64.start, B + 8 * SZ_2M] }),
    overlapsRange: (s, e) => { calls.push(`overlaps ${(e - s) / 1024}K`); return false },
    allPagesPresent: (s, e) => { calls.push(`present ${(e - s) / 1024}K`); return false }
  }
  t.same(selectChunk(q), win(W4))
  t.same(calls, ['overlaps 64K', 'present 64K'], '2M never fit; 64K checked both ways; 4K checked neither')
  calls.length = 0
  t.same(selectChunk({ ...q, vmaStart: B, allPagesPresent: (s, e) => { calls.push(`present ${(e - s) / 1024}K`); return false } }), win(W2))
  t.same(calls, ['overlaps 2048K'], '2M is above the threshold: only the overlap check')
  calls.length = 0
  t.same(selectChunk({
    ...q,
    vmaStart: B,
    overlapsRange: (s, e) => { calls.push(`overlaps ${(e - s) / 1024}K`); return e - s === SZ_2M }
  }), win(W4))
  t.same(calls, ['overlaps 2048K', 'overlaps 64K', 'present 64K'], 'a range demotes 2M, an absent page demotes 64K')
})

t.test('candidateWindow spans the largest chunk around the address', async (t) => {
  t.same(candidateWindow(A), win(W2))
  t.same(candidateWindow(W2.start), win(W2))
  t.same(candidateWindow(W2.end - 1), win(W2))
  t.same(candidateWindow(A, [SZ_64K, SZ_4K]), win(W64))
  t.same(CHUNK_SIZES, [SZ_2M, SZ_64K, SZ_4K], 'xe chunk sizes')
  t.equal(CHECK_PAGES_THRESHOLD, SZ_64K)
})

/** drm_gpusvm_range_chunk_size, transcribed: ALIGN_DOWN/ALIGN, the goto retry, LONG_MAX as null. */
function kernelChunkSize (q: ChunkQuery): { start: number, end: number } | null {
  const sizes = q.chunkSizes ?? [SZ_2M, SZ_64K, SZ_4K]
  let i = 0
  let start = 0
  let end = 0
  for (;;) { // retry:
    for (; i < sizes.length; ++i) {
      const size = sizes[i] as number
      start = Math.floor(q.addr / size) * size
      end = Math.ceil((q.addr + 1) / size) * size
      if (start >= q.vmaStart && end <= q.vmaEnd &&
          start >= q.notifierStart && end <= q.notifierEnd &&
          start >= q.gvaStart && end <= q.gvaEnd) break
    }
    if (i === sizes.length) return null
    if (end - start !== SZ_4K) {
      if (q.overlapsRange(start, end)) { ++i; continue }
      if (end - start <= q.checkPagesThreshold && !q.allPagesPresent(start, end)) { ++i; continue }
    }
    return { start, end }
  }
}

t.test('selectChunk agrees with the kernel loop (property)', async (t) => {
  const PAGES = 4 * 512 // an 8 MiB region
  const gran = fc.constantFrom(1, 1, 16, 512)
  const edge = fc.tuple(fc.integer({ min: 0, max: PAGES }), gran).map(([p, g]) => Math.floor(p / g) * g)
  const bounds = fc.tuple(edge, edge).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number])
  const wide = fc.constant([-1, PAGES + 1] as [number, number])
  const arb = fc.record({
    base2m: fc.integer({ min: 0, max: USER_SPACE_END / SZ_2M - 8 }),
    addrByte: fc.integer({ min: 0, max: PAGES * SZ_4K - 1 }),
    vma: fc.oneof(bounds, wide),
    notifier: fc.oneof(bounds, wide),
    gva: fc.oneof(bounds, wide),
    threshold: fc.constantFrom(0, SZ_64K, SZ_64K, SZ_2M),
    sizes: fc.constantFrom(undefined, undefined, [SZ_2M, SZ_64K, SZ_4K], [SZ_64K, SZ_4K], [SZ_2M, SZ_4K], [SZ_2M]),
    ranges: fc.array(fc.tuple(fc.integer({ min: 0, max: PAGES - 1 }), fc.constantFrom(1, 16, 512)), { maxLength: 4 }),
    absent: fc.array(fc.integer({ min: 0, max: PAGES - 1 }), { maxLength: 6 })
  })
  const out = fc.check(fc.property(arb, (g) => {
    const base = g.base2m * SZ_2M
    const at = (page: number): number => Math.max(0, base + page * SZ_4K)
    const q: ChunkQuery = {
      addr: base + g.addrByte,
      vmaStart: at(g.vma[0]),
      vmaEnd: at(g.vma[1]),
      notifierStart: at(g.notifier[0]),
      notifierEnd: at(g.notifier[1]),
      gvaStart: at(g.gva[0]),
      gvaEnd: at(g.gva[1]),
      checkPagesThreshold: g.threshold,
      ...(g.sizes !== undefined ? { chunkSizes: g.sizes } : {}),
      overlapsRange: (s, e) => g.ranges.some(([p, n]) => { const rs = base + Math.floor(p / n) * n * SZ_4K; return rs < e && s < rs + n * SZ_4K }),
      allPagesPresent: (s, e) => !g.absent.some((p) => { const a = base + p * SZ_4K; return a >= s && a < e })
    }
    const got = selectChunk(q)
    assert.deepEqual(got, kernelChunkSize(q))
    if (got !== null) {
      const size = got.end - got.start
      assert.ok((q.chunkSizes ?? CHUNK_SIZES).includes(size), 'a configured chunk size')
      assert.equal(got.start % size, 0, 'size-aligned')
      assert.ok(got.start <= q.addr && q.addr < got.end, 'holds the fault address')
      assert.ok(got.start >= Math.max(q.vmaStart, q.notifierStart, q.gvaStart) && got.end <= Math.min(q.vmaEnd, q.notifierEnd, q.gvaEnd), 'inside every bound')
    }
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `selectChunk matches the kernel loop (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

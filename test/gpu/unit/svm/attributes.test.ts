/**
 * The madvise attribute map against a per-page model: apply() reports
 * exactly the sub-spans whose effective attributes changed, runs() cover a
 * window contiguously with adjacent equal runs merged, reset() restores the
 * defaults, spanAt() is the maximal span of equal attributes around an
 * address. Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { Attributes, DEFAULT_ATTRS, type Attrs } from '../../../../services/gpu/svm/attributes.js'
import type { AtomicMode, PreferredLocation } from '../../../../shared/schemas/common.js'

const SEED = Number(process.env.FC_SEED ?? 0xa77e)
const RUNS = Number(process.env.FC_RUNS ?? 200)

const P = 4096
const BASE = 0x7f0000000000 // near the top of user space: exercise large addresses
const WINDOW = 48 // pages modelled
const LIMIT = BASE + WINDOW * P // spanAt's limit in the model

const key = (a: Attrs): string => JSON.stringify([a.preferredLocation, a.atomic])

const prefArb: fc.Arbitrary<PreferredLocation> = fc.oneof(
  fc.constant('device' as const), fc.constant('system' as const), fc.record({ gpu: fc.nat(2) })
)
const atomicArb: fc.Arbitrary<AtomicMode> = fc.constantFrom('undefined', 'device', 'global', 'cpu')
const changeArb: fc.Arbitrary<Partial<Attrs>> = fc.oneof(
  fc.record({ preferredLocation: prefArb }),
  fc.record({ atomic: atomicArb }),
  fc.record({ preferredLocation: prefArb, atomic: atomicArb })
)
const windowArb = fc.tuple(fc.nat(WINDOW - 1), fc.integer({ min: 1, max: 16 }))
  .map(([p, n]) => ({ start: BASE + p * P, end: BASE + Math.min(WINDOW, p + n) * P }))

type Op =
  | { k: 'apply', w: { start: number, end: number }, change: Partial<Attrs> }
  | { k: 'reapply' }
  | { k: 'reset', w: { start: number, end: number } }
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('apply' as const), w: windowArb, change: changeArb }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reapply' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('reset' as const), w: windowArb }) }
)

function pagesOf (spans: Array<{ start: number, end: number }>): number[] {
  const out: number[] = []
  for (const s of spans) for (let a = s.start; a < s.end; a += P) out.push((a - BASE) / P)
  return out
}

function checkSpans (spans: Array<{ start: number, end: number }>, w: { start: number, end: number }): void {
  let prev = w.start
  for (const s of spans) {
    assert.ok(s.start < s.end, 'changed spans are non-empty')
    assert.ok(s.start >= prev && s.end <= w.end, 'changed spans are sorted, disjoint and inside the window')
    prev = s.end
  }
}

function checkRuns (attrs: Attributes, model: Attrs[], from: number, to: number): void {
  const runs = attrs.runs(BASE + from * P, BASE + to * P)
  let at = BASE + from * P
  for (const [i, r] of runs.entries()) {
    assert.equal(r.addr, at, `runs are contiguous from ${from} to ${to}`)
    assert.ok(r.length > 0)
    for (let a = r.addr; a < r.addr + r.length; a += P) {
      assert.equal(key(r), key(model[(a - BASE) / P] as Attrs), `run value at page ${(a - BASE) / P}`)
    }
    if (i > 0) assert.notEqual(key(r), key(runs[i - 1] as Attrs), 'adjacent runs differ (equal ones are merged)')
    at = r.addr + r.length
  }
  assert.equal(at, BASE + to * P, 'runs cover the whole window')
}

function spanAtModel (model: Attrs[], page: number): { start: number, end: number } {
  const k = key(model[page] as Attrs)
  let lo = page
  while (lo > 0 && key(model[lo - 1] as Attrs) === k) lo--
  let hi = page + 1
  while (hi < WINDOW && key(model[hi] as Attrs) === k) hi++
  // Below the window everything is default: a default span reaches down to 0.
  const start = lo === 0 && k === key(DEFAULT_ATTRS) ? 0 : BASE + lo * P
  return { start, end: BASE + hi * P }
}

t.test('random apply/reset sequences match a per-page model (property)', async (t) => {
  const out = fc.check(fc.property(fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), fc.array(fc.tuple(fc.nat(WINDOW), fc.nat(WINDOW)), { minLength: 3, maxLength: 3 }), (ops, probes) => {
    const attrs = new Attributes()
    const model: Attrs[] = Array.from({ length: WINDOW }, () => DEFAULT_ATTRS)
    let last: { w: { start: number, end: number }, change: Partial<Attrs> } | null = null
    for (const op of ops) {
      let w: { start: number, end: number }
      let change: Partial<Attrs>
      if (op.k === 'reapply') {
        if (last === null) continue
        ;({ w, change } = last)
      } else if (op.k === 'reset') {
        w = op.w
        change = DEFAULT_ATTRS
      } else {
        w = op.w
        change = op.change
      }
      const before = model.map(key)
      const lo = (w.start - BASE) / P
      const hi = (w.end - BASE) / P
      for (let p = lo; p < hi; p++) {
        const cur = model[p] as Attrs
        model[p] = { preferredLocation: change.preferredLocation ?? cur.preferredLocation, atomic: change.atomic ?? cur.atomic }
      }
      const expected = model.map((a, p) => key(a) !== before[p] ? p : -1).filter((p) => p >= 0)
      const changed = op.k === 'reset' ? (attrs.reset(w.start, w.end), null) : attrs.apply(w.start, w.end, change)
      if (changed !== null) {
        checkSpans(changed, w)
        assert.deepEqual(pagesOf(changed), expected, `apply ${JSON.stringify(op)} reports exactly the changed pages`)
        assert.deepEqual(attrs.apply(w.start, w.end, change), [], 're-applying the same change reports nothing')
      }
      if (op.k === 'apply') last = { w, change }
      for (let p = 0; p < WINDOW; p++) assert.equal(key(attrs.at(BASE + p * P + 123)), key(model[p] as Attrs), `at() page ${p}`)
    }
    checkRuns(attrs, model, 0, WINDOW)
    for (const [a, b] of probes) checkRuns(attrs, model, Math.min(a, b), Math.max(a, b))
    for (let p = 0; p < WINDOW; p++) {
      const got = attrs.spanAt(BASE + p * P + 7, LIMIT)
      assert.deepEqual(got, spanAtModel(model, p), `spanAt page ${p}`)
    }
    // reset() over everything restores the defaults.
    attrs.reset(BASE, LIMIT)
    assert.deepEqual(attrs.runs(BASE, LIMIT), [{ addr: BASE, length: WINDOW * P, ...DEFAULT_ATTRS }])
    assert.deepEqual(attrs.spanAt(BASE + 5 * P, LIMIT), { start: 0, end: LIMIT })
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `Attributes matches the model (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

const pick = (x: Attrs): Attrs => ({ preferredLocation: x.preferredLocation, atomic: x.atomic })

t.test('examples', async (t) => {
  const a = new Attributes()
  const M = 0x100000
  t.same(a.runs(M, M + 4 * P), [{ addr: M, length: 4 * P, preferredLocation: 'device', atomic: 'undefined' }], 'defaults everywhere')
  t.same(a.apply(M, M + 4 * P, { preferredLocation: 'device' }), [], 'setting the default changes nothing')
  t.same(a.apply(M + P, M + 3 * P, { preferredLocation: { gpu: 1 } }), [{ start: M + P, end: M + 3 * P }])
  t.same(a.apply(M + P, M + 3 * P, { preferredLocation: { gpu: 1 } }), [], 'an equal object counts as the same value')
  t.same(a.apply(M, M + 4 * P, { preferredLocation: { gpu: 1 } }).flatMap((s) => [s.start, s.end]).sort((x, y) => x - y),
    [M, M + P, M + 3 * P, M + 4 * P], 'only the two edges changed')
  t.same(a.runs(M - P, M + 5 * P), [
    { addr: M - P, length: P, preferredLocation: 'device', atomic: 'undefined' },
    { addr: M, length: 4 * P, preferredLocation: { gpu: 1 }, atomic: 'undefined' },
    { addr: M + 4 * P, length: P, preferredLocation: 'device', atomic: 'undefined' }
  ], 'the three applications merged into one run')
  t.same(a.apply(M + 2 * P, M + 6 * P, { atomic: 'global' }), [{ start: M + 2 * P, end: M + 4 * P }, { start: M + 4 * P, end: M + 6 * P }])
  t.same(pick(a.at(M + 2 * P)), { preferredLocation: { gpu: 1 }, atomic: 'global' }, 'a partial change keeps the other attribute')
  t.same(pick(a.at(M + 5 * P)), { preferredLocation: 'device', atomic: 'global' })
  t.same(a.spanAt(M + 3 * P, 2 ** 47), { start: M + 2 * P, end: M + 4 * P })
  t.same(a.spanAt(M + 100 * P, 2 ** 47), { start: M + 6 * P, end: 2 ** 47 }, 'a default span runs to the limit')
  t.same(a.spanAt(0, 2 ** 47), { start: 0, end: M }, 'and down to 0')
  a.reset(M + P, M + 5 * P)
  t.same(a.runs(M, M + 6 * P).map((r) => [r.addr - M, r.length / P, r.atomic]),
    [[0, 1, 'undefined'], [P, 4, 'undefined'], [5 * P, 1, 'global']])
  t.same(a.at(M).preferredLocation, { gpu: 1 }, 'reset leaves the outside alone')
  a.reset(0, 2 ** 47)
  t.same(a.runs(0, 2 ** 47), [{ addr: 0, length: 2 ** 47, preferredLocation: 'device', atomic: 'undefined' }], 'everything back to defaults')
  t.same(a.runs(M, M), [], 'an empty window has no runs')
})

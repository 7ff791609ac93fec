/**
 * The in-memory transport's scheduler: seeded deliveries interleave across
 * channels deterministically per seed, keep FIFO per channel, and differ
 * between seeds; unseeded delivery is a microtask. Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { Scheduler, type SchedulerOptions } from '../../../shared/transport/scheduler.js'
import { createMemoryPair } from '../../../shared/transport/memory.js'

const SEED = Number(process.env.FC_SEED ?? 0x5c4ed)
const RUNS = Number(process.env.FC_RUNS ?? 100)

/**
 * A plan: items scheduled up front on channels, some of which schedule
 * follow-ups (on a channel) when delivered, as a reply would be.
 */
interface Item { ch: number, followUp: number | null }

/** Runs a plan; resolves with the delivery order as "channel:index" labels. */
function runPlan (opts: SchedulerOptions, plan: Item[], extra: Array<[string, number]> = []): Promise<string[]> {
  const s = new Scheduler(opts)
  for (const [prefix, ticks] of extra) s.setExtraDelay(prefix, ticks)
  const order: string[] = []
  const perChannel = new Map<number, number>()
  const total = plan.length + plan.filter((p) => p.followUp !== null).length
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${order.length} of ${total} delivered`)), 10_000)
    const put = (ch: number, then: (() => void) | null): void => {
      const n = perChannel.get(ch) ?? 0
      perChannel.set(ch, n + 1)
      s.schedule(`c${ch}`, () => {
        order.push(`${ch}:${n}`)
        then?.()
        if (order.length === total) { clearTimeout(timer); resolve(order) }
      })
    }
    for (const item of plan) {
      const f = item.followUp
      put(item.ch, f === null ? null : () => put(f, null))
    }
  })
}

function fifoPerChannel (order: string[]): void {
  const last = new Map<string, number>()
  for (const label of order) {
    const [ch, n] = label.split(':') as [string, string]
    assert.equal(Number(n), (last.get(ch) ?? -1) + 1, `channel ${ch} out of order in ${order.join(' ')}`)
    last.set(ch, Number(n))
  }
}

const planArb = fc.array(fc.record({
  ch: fc.nat(4),
  followUp: fc.option(fc.nat(4), { nil: null })
}), { minLength: 1, maxLength: 40, size: 'max' })

t.test('seeded: per-channel FIFO always, same seed same order (property)', async (t) => {
  const out = await fc.check(fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 16 }), planArb, async (seed, maxDelay, plan) => {
    const a = await runPlan({ seed, maxDelay }, plan)
    fifoPerChannel(a)
    const b = await runPlan({ seed, maxDelay }, plan)
    assert.deepEqual(b, a, 'a replay with the same seed delivers in the same order')
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `FIFO and replayable (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

t.test('seeded: injected per-prefix delay keeps FIFO (property)', async (t) => {
  const out = await fc.check(fc.asyncProperty(fc.nat(), planArb, fc.nat(4), fc.integer({ min: 1, max: 20 }), async (seed, plan, slowCh, ticks) => {
    fifoPerChannel(await runPlan({ seed }, plan, [[`c${slowCh}`, ticks]]))
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `FIFO with extra delay (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

t.test('different seeds interleave channels differently', async (t) => {
  const plan: Item[] = []
  for (let i = 0; i < 40; i++) plan.push({ ch: i % 4, followUp: null })
  const orders = new Set<string>()
  for (let seed = 1; seed <= 20; seed++) orders.add((await runPlan({ seed }, plan)).join(' '))
  t.ok(orders.size >= 10, `20 seeds gave ${orders.size} distinct orders`)
  const fifo = plan.map((p, i) => `${p.ch}:${Math.floor(i / 4)}`).join(' ')
  t.notOk(orders.has(fifo) && orders.size === 1, 'not simply the global schedule order')
})

t.test('seeded with maxDelay 0 keeps the global schedule order', async (t) => {
  const plan: Item[] = []
  for (let i = 0; i < 20; i++) plan.push({ ch: (i * 7) % 5, followUp: null })
  const order = await runPlan({ seed: 3, maxDelay: 0 }, plan)
  const seen = new Map<number, number>()
  t.same(order, plan.map((p) => {
    const n = seen.get(p.ch) ?? 0
    seen.set(p.ch, n + 1)
    return `${p.ch}:${n}`
  }))
})

t.test('seeded delivery is not synchronous and not a microtask', async (t) => {
  const s = new Scheduler({ seed: 1 })
  t.equal(s.seeded, true)
  let ran = false
  s.schedule('x', () => { ran = true })
  t.equal(ran, false, 'not synchronous')
  await Promise.resolve()
  await Promise.resolve()
  t.equal(ran, false, 'not on a microtask')
  while (!ran) await new Promise((resolve) => setImmediate(resolve))
  t.equal(ran, true, 'delivered on a later macrotask')
})

t.test('without a seed delivery is immediate (a microtask)', async (t) => {
  const s = new Scheduler()
  t.equal(s.seeded, false)
  const log: string[] = []
  s.schedule('a', () => log.push('a1'))
  s.schedule('b', () => log.push('b1'))
  s.schedule('a', () => log.push('a2'))
  t.same(log, [], 'not synchronous')
  await new Promise<void>((resolve) => queueMicrotask(resolve))
  t.same(log, ['a1', 'b1', 'a2'], 'delivered on the microtask queue, in schedule order')
})

t.test('unseeded with an injected delay: the slow prefix is overtaken, FIFO kept', async (t) => {
  const s = new Scheduler()
  s.setExtraDelay('slow', 5)
  const log: string[] = []
  const done = new Promise<void>((resolve) => {
    s.schedule('slow', () => log.push('s1'))
    s.schedule('fast', () => log.push('f1'))
    s.schedule('slow', () => log.push('s2'))
    s.schedule('fast', () => { log.push('f2') })
    s.schedule('slow', () => { log.push('s3'); resolve() })
  })
  await done
  t.same(log, ['f1', 'f2', 's1', 's2', 's3'])
  // Removing the delay restores the microtask path.
  s.setExtraDelay('slow', 0)
  let ran = false
  s.schedule('slow', () => { ran = true })
  await new Promise<void>((resolve) => queueMicrotask(resolve))
  t.equal(ran, true)
})

t.test('unseeded: removing an injected delay while deliveries are queued keeps FIFO', async (t) => {
  const s = new Scheduler()
  const log: string[] = []
  s.setExtraDelay('slow', 5)
  s.schedule('slow', () => log.push('s1'))
  s.schedule('other', () => log.push('o1'))
  s.setExtraDelay('slow', 0)
  const done = new Promise<void>((resolve) => {
    s.schedule('slow', () => log.push('s2'))
    s.schedule('other', () => { log.push('o2'); resolve() })
  })
  await done
  while (log.length < 4) await new Promise((resolve) => setImmediate(resolve))
  t.same(log.filter((l) => l.startsWith('s')), ['s1', 's2'], 'the later message does not overtake the delayed one')
  t.same(log.filter((l) => l.startsWith('o')), ['o1', 'o2'])
})

t.test('memory pairs over a seeded scheduler keep each direction FIFO (property)', async (t) => {
  const out = await fc.check(fc.asyncProperty(fc.nat(), fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), async (seed, dirs) => {
    const s = new Scheduler({ seed })
    const [a, b] = createMemoryPair(s, 'a', 'b')
    const gotA: number[] = []
    const gotB: number[] = []
    let expectA = 0
    let expectB = 0
    const done = new Promise<void>((resolve) => {
      const check = (): void => { if (gotA.length === expectA && gotB.length === expectB) resolve() }
      a.setHandlers({ message: (batch) => { for (const m of batch) gotA.push((m.env as { n: number }).n); check() }, malformed: () => {}, close: () => {} })
      b.setHandlers({ message: (batch) => { for (const m of batch) gotB.push((m.env as { n: number }).n); check() }, malformed: () => {}, close: () => {} })
    })
    dirs.forEach((toB, n) => {
      if (toB) { expectB++; a.send([{ env: { n } }]) } else { expectA++; b.send([{ env: { n } }]) }
    })
    await done
    assert.deepEqual(gotB, dirs.flatMap((toB, n) => toB ? [n] : []))
    assert.deepEqual(gotA, dirs.flatMap((toB, n) => toB ? [] : [n]))
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `both directions FIFO (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

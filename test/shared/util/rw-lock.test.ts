/**
 * RwLock (the mmap_lock's shape): readers share, writers exclude, writer
 * preference (a reader arriving behind a waiting writer waits), and a
 * deadline rejects with ETIMEDOUT and leaves the lock usable. Explicit
 * interleavings first, then a model-based test where fast-check picks the
 * interleaving of requests, releases, failures and deadline expiries, and a
 * fake clock decides exactly when each deadline fires. Seeded (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { RwLock } from '../../../shared/util/rw-lock.js'
import { SvmError } from '../../../shared/errors.js'
import { deferred, type Deferred } from '../../../shared/util/deadline.js'

const SEED = Number(process.env.FC_SEED ?? 0x10c4)
const RUNS = Number(process.env.FC_RUNS ?? 300)

const settle = async (): Promise<void> => {
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof SvmError ? err.code : `other: ${String(err)}`
  }
}

/**
 * Fake timers for one magic delay only (every other setTimeout goes to the
 * real one): the test fires a deadline exactly when it wants to.
 */
const FAKE_MS = 987_654
class FakeDeadlines {
  readonly live = new Set<object>()
  private readonly fns = new Map<object, () => void>()
  last: object | null = null
  private readonly realSet = globalThis.setTimeout
  private readonly realClear = globalThis.clearTimeout

  install (): void {
    const realSet = this.realSet
    const realClear = this.realClear
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      if (ms !== FAKE_MS) return realSet(fn, ms, ...(args as []))
      const h = { unref: () => h, ref: () => h, hasRef: () => false }
      this.live.add(h)
      this.fns.set(h, fn)
      this.last = h
      return h
    }) as typeof setTimeout
    globalThis.clearTimeout = ((h: unknown) => {
      if (typeof h === 'object' && h !== null && this.fns.has(h)) {
        this.live.delete(h)
        this.fns.delete(h)
        return
      }
      realClear(h as NodeJS.Timeout)
    }) as typeof clearTimeout
  }

  uninstall (): void {
    globalThis.setTimeout = this.realSet
    globalThis.clearTimeout = this.realClear
  }

  fire (h: object): void {
    const fn = this.fns.get(h)
    if (fn === undefined) throw new Error('firing a timer that is not live')
    this.live.delete(h)
    this.fns.delete(h)
    fn()
  }
}

t.test('readers share the lock', async (t) => {
  const lock = new RwLock()
  let inside = 0
  let maxInside = 0
  const gate = deferred<void>()
  const readers = [1, 2, 3].map(() => lock.read(async () => {
    inside++
    maxInside = Math.max(maxInside, inside)
    await gate.promise
    inside--
  }))
  await settle()
  t.equal(maxInside, 3, 'all three readers inside at once')
  gate.resolve()
  await Promise.all(readers)
  t.equal(lock.idle, true)
})

t.test('writers exclude readers and each other', async (t) => {
  const lock = new RwLock()
  const log: string[] = []
  const g1 = deferred<void>()
  const w1 = lock.write(async () => { log.push('w1+'); await g1.promise; log.push('w1-') })
  const r1 = lock.read(() => { log.push('r1') })
  const w2 = lock.write(() => { log.push('w2') })
  await settle()
  t.same(log, ['w1+'], 'nobody enters while a writer holds')
  g1.resolve()
  await Promise.all([w1, r1, w2])
  t.same(log, ['w1+', 'w1-', 'r1', 'w2'], 'then in request order')
  t.equal(lock.idle, true)
})

t.test('writer preference: a reader behind a waiting writer waits', async (t) => {
  const lock = new RwLock()
  const log: string[] = []
  const g = deferred<void>()
  const r1 = lock.read(async () => { log.push('r1+'); await g.promise; log.push('r1-') })
  await settle()
  const w = lock.write(() => { log.push('w') })
  const r2 = lock.read(() => { log.push('r2') })
  await settle()
  t.same(log, ['r1+'], 'r2 did not join r1 while w waits')
  g.resolve()
  await Promise.all([r1, w, r2])
  t.same(log, ['r1+', 'r1-', 'w', 'r2'])
})

t.test('the value and the error of fn come back; the lock is released either way', async (t) => {
  const lock = new RwLock()
  t.equal(await lock.read(() => 7), 7)
  t.equal(await lock.write(async () => 'x'), 'x')
  await t.rejects(lock.write(() => { throw new Error('sync boom') }), /sync boom/)
  await t.rejects(lock.read(async () => { throw new Error('async boom') }), /async boom/)
  t.equal(lock.idle, true, 'released after failures')
  t.equal(await lock.write(() => 1), 1, 'and usable')
})

t.test('deadlines (real timers): ETIMEDOUT, and the lock stays usable', async (t) => {
  const lock = new RwLock()
  const g = deferred<void>()
  const holder = lock.read(async () => { await g.promise })
  await settle()
  let wRan = false
  const w = codeOf(lock.write(() => { wRan = true }, 20))
  const r2 = lock.read(() => 'r2')
  t.equal(await w, 'ETIMEDOUT', 'the writer gives up')
  t.equal(wRan, false)
  t.equal(await r2, 'r2', 'the reader queued behind the timed-out writer is let in at once')
  const w3 = codeOf(lock.write(() => {}, 20))
  t.equal(await w3, 'ETIMEDOUT')
  g.resolve()
  await holder
  t.equal(lock.idle, true, 'nothing left queued')
  t.equal(await lock.write(() => 'w4', 20), 'w4', 'a writer with a deadline gets an idle lock')
  // A reader with a deadline behind a writer.
  const gw = deferred<void>()
  const wh = lock.write(async () => { await gw.promise })
  t.equal(await codeOf(lock.read(() => {}, 15)), 'ETIMEDOUT', 'a reader times out behind a writer')
  gw.resolve()
  await wh
  t.equal(lock.idle, true)
})

t.test('a deadline that fires as the lock is granted hands the lock back', async (t) => {
  const fake = new FakeDeadlines()
  fake.install()
  try {
    const lock = new RwLock()
    // White-box: drive acquire/release directly so the grant and the
    // deadline land in the same synchronous stretch.
    const priv = lock as unknown as { acquire: (w: boolean, ms: number) => Promise<void>, release: (w: boolean) => void }
    await priv.acquire(false, Infinity)
    const w = codeOf(priv.acquire(true, FAKE_MS))
    const timer = fake.last as object
    t.equal(fake.live.size, 1, 'the waiting writer has a deadline timer')
    priv.release(false) // grants the writer synchronously
    fake.fire(timer) // the deadline fires before the grant is seen
    t.equal(await w, 'ETIMEDOUT')
    await settle()
    t.equal(lock.idle, true, 'the writer grant was handed back')
    t.equal(await lock.write(() => 5), 5, 'usable afterwards')
  } finally {
    fake.uninstall()
  }
})

type Cmd =
  | { k: 'req', write: boolean, timed: boolean }
  | { k: 'release', pick: number, fail: boolean }
  | { k: 'expire', pick: number }

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('req' as const), write: fc.boolean(), timed: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('release' as const), pick: fc.nat(), fail: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('expire' as const), pick: fc.nat() }) }
)

type Status = 'waiting' | 'holding' | 'done' | 'failed' | 'timedout'

interface Task {
  id: number
  write: boolean
  timed: boolean
  timer: object | null
  gate: Deferred<void>
  status: Status
  result: Promise<string>
}

/** The specification: a FIFO queue with writer preference. */
class Model {
  holders = new Map<number, boolean>()
  queue: Array<{ id: number, write: boolean }> = []
  status = new Map<number, Status>()
  grants: number[] = []

  request (id: number, write: boolean): void {
    const writerHolds = [...this.holders.values()].some((w) => w)
    const free = write ? this.holders.size === 0 && this.queue.length === 0 : !writerHolds && this.queue.length === 0
    if (free) this.grant(id, write)
    else {
      this.queue.push({ id, write })
      this.status.set(id, 'waiting')
    }
  }

  release (id: number, fail: boolean): void {
    this.holders.delete(id)
    this.status.set(id, fail ? 'failed' : 'done')
    this.drain()
  }

  expire (id: number): void {
    this.queue = this.queue.filter((q) => q.id !== id)
    this.status.set(id, 'timedout')
    this.drain()
  }

  private grant (id: number, write: boolean): void {
    this.holders.set(id, write)
    this.status.set(id, 'holding')
    this.grants.push(id)
  }

  private drain (): void {
    while (this.queue.length > 0) {
      const head = this.queue[0] as { id: number, write: boolean }
      const writerHolds = [...this.holders.values()].some((w) => w)
      if (head.write) {
        if (this.holders.size === 0) { this.queue.shift(); this.grant(head.id, true) }
        return
      }
      if (writerHolds) return
      this.queue.shift()
      this.grant(head.id, false)
    }
  }
}

async function runCommands (cmds: Cmd[], fake: FakeDeadlines): Promise<void> {
  const lock = new RwLock()
  const model = new Model()
  const tasks: Task[] = []
  const grants: number[] = []
  /** The command step after which each task was seen holding the lock. */
  const grantStep = new Map<number, number>()
  let stepNo = 0

  const check = (when: string): void => {
    for (const task of tasks) assert.equal(task.status, model.status.get(task.id), `task ${task.id} after ${when}`)
    const holding = tasks.filter((x) => x.status === 'holding')
    if (holding.some((x) => x.write)) assert.equal(holding.length, 1, `a writer holds alone (${when})`)
    assert.equal(lock.idle, model.holders.size === 0 && model.queue.length === 0, `idle (${when})`)
    for (const task of tasks) {
      if (task.timer !== null && task.status === 'waiting') assert.ok(fake.live.has(task.timer), `waiting task ${task.id} has a live deadline`)
      if (task.timer !== null && task.status !== 'waiting') assert.ok(!fake.live.has(task.timer), `task ${task.id}'s deadline was cleared`)
    }
  }

  for (const [step, cmd] of cmds.entries()) {
    switch (cmd.k) {
      case 'req': {
        const id = tasks.length
        const task: Task = { id, write: cmd.write, timed: cmd.timed, timer: null, gate: deferred<void>(), status: 'waiting', result: Promise.resolve('') }
        const fn = async (): Promise<void> => {
          task.status = 'holding'
          grants.push(id)
          grantStep.set(id, stepNo)
          try {
            await task.gate.promise
            task.status = 'done'
          } catch (err) {
            task.status = 'failed'
            throw err
          }
        }
        fake.last = null
        const p = cmd.write ? lock.write(fn, cmd.timed ? FAKE_MS : Infinity) : lock.read(fn, cmd.timed ? FAKE_MS : Infinity)
        task.timer = fake.last
        task.result = p.then(() => 'ok', (err: unknown) => {
          if (err instanceof SvmError && err.code === 'ETIMEDOUT') { task.status = 'timedout'; return 'ETIMEDOUT' }
          return (err as Error).message
        })
        tasks.push(task)
        model.request(id, cmd.write)
        break
      }
      case 'release': {
        const holders = [...model.holders.keys()].sort((a, b) => a - b)
        if (holders.length === 0) continue
        const id = holders[cmd.pick % holders.length] as number
        const task = tasks[id] as Task
        if (cmd.fail) task.gate.reject(new Error(`fail ${id}`))
        else task.gate.resolve()
        model.release(id, cmd.fail)
        break
      }
      case 'expire': {
        const timed = model.queue.filter((q) => (tasks[q.id] as Task).timed)
        if (timed.length === 0) continue
        const id = (timed[cmd.pick % timed.length] as { id: number }).id
        fake.fire((tasks[id] as Task).timer as object)
        model.expire(id)
        break
      }
    }
    await settle()
    check(`step ${step} ${JSON.stringify(cmd)}`)
    stepNo++
  }

  // Drain: release holders until everything finished; nothing may stay stuck.
  for (let guard = 0; model.holders.size > 0; guard++) {
    assert.ok(guard < 1000, 'drain terminates')
    const id = [...model.holders.keys()][0] as number
    ;(tasks[id] as Task).gate.resolve()
    model.release(id, false)
    await settle()
    check(`drain ${id}`)
    stepNo++
  }
  assert.equal(model.queue.length, 0, 'no waiter left behind')
  assert.equal(lock.idle, true)
  for (const task of tasks) {
    const r = await task.result
    const want = { done: 'ok', failed: `fail ${task.id}`, timedout: 'ETIMEDOUT' }[task.status as 'done' | 'failed' | 'timedout']
    assert.equal(r, want, `task ${task.id} outcome`)
  }
  // Readers let in together start in either order (a deadline adds a hop),
  // so compare the grant steps: never granted before an earlier request.
  const admitted = tasks.filter((x) => x.status !== 'timedout').map((x) => x.id)
  assert.deepEqual([...grants].sort((a, b) => a - b), admitted, 'every task that did not time out got the lock once')
  assert.deepEqual(model.grants, admitted, 'the model grants in request order')
  for (let i = 1; i < admitted.length; i++) {
    const a = grantStep.get(admitted[i - 1] as number) as number
    const b = grantStep.get(admitted[i] as number) as number
    assert.ok(a <= b, `task ${admitted[i] as number} was granted before the earlier task ${admitted[i - 1] as number}`)
  }
  assert.equal(fake.live.size, 0, 'no deadline timer left')
}

t.test('model-based: random interleavings of requests, releases, failures and deadlines (property)', async (t) => {
  const fake = new FakeDeadlines()
  fake.install()
  try {
    const out = await fc.check(fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 40, size: 'max' }), async (cmds) => {
      await runCommands(cmds, fake)
    }), { seed: SEED, numRuns: RUNS })
    t.notOk(out.failed, `the lock follows the model (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
  } finally {
    fake.uninstall()
  }
  t.equal(globalThis.setTimeout.name, 'setTimeout', 'real timers restored')
})

/**
 * RpcPeer over the in-memory transport: replies with payloads, errors that
 * keep their code across the connection, validation of everything inbound
 * (the peer keeps serving after each rejection), deadlines, connection loss
 * and batching. Seeded (FC_SEED) where the scheduler is.
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { ERROR_CODES, SvmError } from '../../../shared/errors.js'
import { copyFromPayload, type Payload } from '../../../shared/transport/payload.js'
import { pair } from './rpc-fixtures.js'

const SEED = Number(process.env.FC_SEED ?? 0x5eed)
const RUNS = Number(process.env.FC_RUNS ?? 60)

async function outcome (p: Promise<unknown>): Promise<{ code: string, message: string, details?: unknown }> {
  try {
    await p
    return { code: 'resolved', message: '' }
  } catch (err) {
    if (err instanceof SvmError) return { code: err.code, message: err.message, details: err.details }
    return { code: `not an SvmError: ${String(err)}`, message: '' }
  }
}

function bytesOf (p: Payload | null): number[] {
  if (p === null) return []
  const out = new Uint8Array(p.length)
  copyFromPayload(p, 0, out, 0, p.length)
  return [...out]
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('requests and replies, with and without payload chunks', async (t) => {
  const { client } = pair()
  const r = await client.request('echo', { x: 42 })
  t.same(r.result, { x: 42 })
  t.equal(r.data, null, 'no payload in, none out')

  const chunks = [new Uint8Array([1, 2, 3]), new Uint8Array([]), new Uint8Array([4, 5, 6, 7])]
  const rev = await client.request('reverse', {}, { data: chunks })
  t.same(rev.result, { n: 7 })
  t.same(bytesOf(rev.data), [7, 6, 5, 4, 3, 2, 1], 'payload crossed both ways in order')
  t.equal(rev.data?.chunks.length, 2, 'the reply keeps its chunks')

  const none = await client.request('reverse', {})
  t.same(none.result, { n: 0 })
  t.equal(none.data, null)
})

t.test('concurrent requests under a seeded scheduler all get their own reply (property)', async (t) => {
  const reqArb = fc.array(fc.record({
    x: fc.integer({ min: -1000, max: 1000 }),
    chunks: fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 3 })
  }), { minLength: 1, maxLength: 12 })
  const out = await fc.check(fc.asyncProperty(fc.nat(), reqArb, async (seed, reqs) => {
    const { client } = pair({ seed, memory: { checkChunks: true } })
    const replies = await Promise.all(reqs.map(async (q, i) => i % 2 === 0
      ? { echo: (await client.request('echo', { x: q.x })).result.x }
      : { rev: bytesOf((await client.request('reverse', {}, { data: q.chunks })).data) }))
    reqs.forEach((q, i) => {
      if (i % 2 === 0) assert.deepEqual(replies[i], { echo: q.x })
      else assert.deepEqual(replies[i], { rev: q.chunks.flatMap((c) => [...c]).reverse() })
    })
  }), { seed: SEED, numRuns: RUNS })
  t.notOk(out.failed, `every request resolves with its own reply (seed ${SEED})`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
})

t.test('errors cross with the same code, message and details', async (t) => {
  const { client } = pair()
  for (const code of ERROR_CODES) {
    for (const async of [false, true]) {
      const o = await outcome(client.request('fail', { code, async }))
      // A peer calling our message malformed is our own bug: it arrives as EIO.
      const want = code === 'E_VALIDATION' ? 'EIO' : code
      t.equal(o.code, want, `${code} (${async ? 'async' : 'sync'} throw)`)
      if (code === 'E_VALIDATION') t.match(o.message, /fail rejected by .*failed with E_VALIDATION/)
      else t.equal(o.message, `failed with ${code}`)
      t.same(o.details, { opIndex: 7 }, 'details cross too')
    }
  }
  const plain = await outcome(client.request('fail', { code: 'EBUSY', async: false, plain: true }))
  t.equal(plain.code, 'EIO', 'a non-SvmError becomes EIO')
  t.match(plain.message, /fail failed: plain EBUSY/)
  const plainAsync = await outcome(client.request('fail', { code: 'EBUSY', async: true, plain: true }))
  t.equal(plainAsync.code, 'EIO', 'an async non-SvmError becomes EIO')
  t.same((await client.request('echo', { x: 1 })).result, { x: 1 }, 'the server keeps serving after handler errors')
})

t.test('an error reply with an unknown code or odd fields is rebuilt as EIO', async (t) => {
  const { client, serverConn, state } = pair()
  const p1 = client.request('hang', {})
  const p2 = client.request('hang', {})
  await tick()
  // Forge error replies from the server side for ids 1 and 2.
  serverConn.injectRaw((h) => h.message([
    { env: { t: 'e', id: 1, code: 'EWHATEVER', message: 'odd', details: [1, 2] }, data: null },
    { env: { t: 'e', id: 2, code: 17, message: { no: 1 } }, data: null }
  ]))
  const o1 = await outcome(p1)
  t.equal(o1.code, 'EIO')
  t.equal(o1.message, 'odd')
  t.equal(o1.details, undefined, 'array details are dropped')
  const o2 = await outcome(p2)
  t.equal(o2.code, 'EIO')
  t.equal(o2.message, 'remote error')
  for (const h of state.hangs) h.resolve()
  await tick()
  t.equal(client.rejected, 0, 'late real replies to settled ids are not malformed')
  t.same((await client.request('echo', { x: 3 })).result, { x: 3 })
})

t.test('unknown methods and invalid params get E_VALIDATION (EIO for the sender); the peer keeps serving', async (t) => {
  const { client, server } = pair()
  const cases: Array<[string, Promise<unknown>]> = [
    ['method the server does not know', client.request('missing', {})],
    ['method in the table but without a handler', client.request('unhandled', {})],
    ['wrong param type', client.request('echo', { x: 'one' } as never)],
    ['non-integer param', client.request('echo', { x: 1.5 })],
    ['missing param', client.request('echo', {} as never)],
    ['extra param', client.request('echo', { x: 1, y: 2 } as never)],
    ['params not an object', client.request('echo', [1] as never)],
    ['params absent', client.request('echo', undefined as never)]
  ]
  for (const [what, p] of cases) {
    const o = await outcome(p)
    t.equal(o.code, 'EIO', what)
    t.match(o.message, /rejected by/, `${what}: says the peer rejected it`)
  }
  t.equal(server.rejected, cases.length, 'each one counted')
  t.same((await client.request('echo', { x: 5 })).result, { x: 5 }, 'a good request still works')
})

t.test('method names from Object.prototype are unknown methods', async (t) => {
  const { client, clientConn, server } = pair()
  const ids = [900001, 900002, 900003, 900004]
  const names = ['constructor', 'hasOwnProperty', '__proto__', 'toString']
  clientConn.injectRaw((h) => h.message(names.map((m, i) => ({ env: { t: 'q', id: ids[i], m, p: {} }, data: null }))))
  t.same((await client.request('echo', { x: 6 })).result, { x: 6 })
  t.equal(server.rejected, names.length)
})

t.test('malformed envelopes and frames are rejected, counted, and later requests work', async (t) => {
  const { client, clientConn, server } = pair()
  const garbage: unknown[] = [
    null, 42, 'str', true, [], [1, 2], {}, { t: 'x' }, { t: 7 },
    { t: 'q' }, { t: 'q', id: 0, m: 'echo', p: { x: 1 } }, { t: 'q', id: -3, m: 'echo' },
    { t: 'q', id: 1.5, m: 'echo' }, { t: 'q', id: '12', m: 'echo' }, { t: 'q', id: 2 ** 60, m: 'echo' },
    { t: 'q', id: 910001, m: 5 }, { t: 'q', id: 910002 },
    { t: 'n' }, { t: 'n', m: 1 }, { t: 'n', m: 'nope', p: {} }, { t: 'n', m: 'note', p: { x: 'bad' } },
    { t: 'r' }, { t: 'r', id: 'a' }, { t: 'r', id: -1, r: {} }, { t: 'e' }, { t: 'e', id: 0 }
  ]
  for (const env of garbage) clientConn.injectRaw((h) => h.message([{ env, data: null }]))
  clientConn.injectRaw((h) => h.malformed('text frame'))
  clientConn.injectRaw((h) => h.malformed('header is not JSON'))
  // A batch that mixes garbage with a good notification: the good one is still handled.
  clientConn.injectRaw((h) => h.message([{ env: null, data: null }, { env: { t: 'n', m: 'note', p: { x: 9 } }, data: null }]))
  const r = await client.request('echo', { x: 8 })
  t.same(r.result, { x: 8 }, 'a request after the garbage is answered')
  t.equal(server.rejected, garbage.length + 2 + 1, 'every malformed message and frame counted')
  t.equal(client.rejected, 0, 'E_VALIDATION replies to forged ids are ignored by the client, not counted')
  t.same(await new Promise((resolve) => setImmediate(() => resolve(server.closed))), false, 'the connection stays open')
})

t.test('a reply that fails its result schema rejects the caller with EIO', async (t) => {
  const { client } = pair()
  const o = await outcome(client.request('bad', {}))
  t.equal(o.code, 'EIO')
  t.match(o.message, /malformed reply to bad/)
  t.equal(client.rejected, 1, 'counted on the caller')
  t.same((await client.request('echo', { x: 2 })).result, { x: 2 }, 'the caller keeps working')
})

t.test('a reply for no pending request is ignored', async (t) => {
  const { client, serverConn } = pair()
  serverConn.injectRaw((h) => h.message([{ env: { t: 'r', id: 4242, r: { x: 1 } }, data: null }, { env: { t: 'e', id: 4243, code: 'EIO', message: 'x' }, data: null }]))
  t.same((await client.request('echo', { x: 4 })).result, { x: 4 })
  t.equal(client.rejected, 0)
})

t.test('deadlines give ETIMEDOUT and a late reply is dropped', async (t) => {
  const { client, state } = pair({ defaultTimeoutMs: 40 })
  const started = Date.now()
  const o = await outcome(client.request('hang', {}, { timeoutMs: 20 }))
  t.equal(o.code, 'ETIMEDOUT', 'per-request deadline')
  t.ok(Date.now() - started >= 15, 'not before the deadline')
  t.equal((await outcome(client.request('hang', {}))).code, 'ETIMEDOUT', 'default deadline')
  for (const h of state.hangs) h.resolve()
  await tick()
  await tick()
  t.equal(client.rejected, 0, 'the late replies are not errors')
  t.same((await client.request('echo', { x: 11 })).result, { x: 11 }, 'still usable')
  // A request with no deadline waits as long as it takes.
  const slow = client.request('hang', {}, { timeoutMs: Infinity })
  await new Promise((resolve) => setTimeout(resolve, 60))
  state.hangs.at(-1)?.resolve()
  t.same((await slow).result, {}, 'Infinity never times out')
})

t.test('closing the connection fails pending requests with ENOLINK', async (t) => {
  await t.test('local close', async (t) => {
    const { client } = pair()
    const reasons: string[] = []
    client.onClose((r) => reasons.push(r))
    const p1 = client.request('hang', {})
    const p2 = client.request('hang', {}, { timeoutMs: 50 })
    await tick()
    client.close('bye')
    t.equal((await outcome(p1)).code, 'ENOLINK')
    t.equal((await outcome(p2)).code, 'ENOLINK')
    t.equal(client.closed, true)
    t.same(reasons, ['bye'])
    t.equal((await outcome(client.request('echo', { x: 1 }))).code, 'ENOLINK', 'a request after close fails at once')
  })
  await t.test('remote close', async (t) => {
    const { client, server } = pair()
    const reasons: string[] = []
    client.onClose((r) => reasons.push(r))
    const p = client.request('hang', {})
    await tick()
    server.close('going away')
    t.equal((await outcome(p)).code, 'ENOLINK')
    t.equal(client.closed, true)
    t.same(reasons, ['peer closed: going away'])
  })
  await t.test('a request queued in the same tick as the close', async (t) => {
    const { client } = pair()
    const p = client.request('echo', { x: 1 })
    client.close()
    t.equal((await outcome(p)).code, 'ENOLINK')
  })
  await t.test('messages sent before close are delivered before it', async (t) => {
    const { client, state, server } = pair()
    let serverClosed = ''
    server.onClose((r) => { serverClosed = r })
    client.notify('note', { x: 1 })
    client.notify('note', { x: 2 })
    client.close('done')
    while (serverClosed === '') await tick()
    t.same(state.notes, [1, 2], 'notifications flushed on close')
    t.equal(serverClosed, 'peer closed: done')
    client.notify('note', { x: 3 })
    await tick()
    t.same(state.notes, [1, 2], 'notify after close is dropped')
  })
})

t.test('several requests in one tick go out in one batch', async (t) => {
  const { client, clientSends, serverSends } = pair()
  const ps = [1, 2, 3, 4, 5].map((x) => client.request('echo', { x }))
  client.notify('note', { x: 0 })
  t.same(clientSends, [], 'nothing is sent synchronously')
  const rs = await Promise.all(ps)
  t.same(rs.map((r) => r.result.x), [1, 2, 3, 4, 5])
  t.same(clientSends, [6], 'one send carrying five requests and a notification')
  t.same(serverSends, [5], 'the five replies went back together')
  await client.request('echo', { x: 9 })
  t.same(clientSends, [6, 1], 'a later tick is a new batch')
})

t.test('E_VALIDATION replies go out in one batch with the good replies', async (t) => {
  const { client, serverSends, server } = pair()
  const rs = await Promise.all([
    outcome(client.request('echo', { x: 1 })),
    outcome(client.request('missing', {})),
    outcome(client.request('echo', { x: 'x' } as never))
  ])
  t.same(rs.map((r) => r.code), ['resolved', 'EIO', 'EIO'], 'rejections reach the sender as EIO')
  t.same(serverSends, [3])
  t.equal(server.rejected, 2)
})

t.test('a throwing message handler does not take the connection down', async (t) => {
  const { client, server, state } = pair()
  // Notifications ignore handler errors; the serving loop must survive a handler that throws.
  server.handle('note', () => { throw new Error('boom') })
  client.notify('note', { x: 1 })
  t.same((await client.request('echo', { x: 12 })).result, { x: 12 })
  t.same(state.notes, [])
  t.equal(server.closed, false)
})

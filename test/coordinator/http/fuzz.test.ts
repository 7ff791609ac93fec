/**
 * Seeded fuzzing of the whole front door: random JSON values, near-valid
 * bodies built from the contract's field names, random strings and random
 * bytes, with valid and invalid path ids and query strings, at every route.
 * Whatever comes in, the status is below 500, and an error carries a
 * documented `code` whose status is the one DESIGN.md §2 gives it.
 *
 * Replay or vary: FC_SEED=<n> (and FC_RUNS=<n>) npx tap test/coordinator/http/fuzz.test.ts
 */
import fc from 'fast-check'
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { restMachine, type RestMachine } from '../../helpers/rest.js'
import { DOCUMENTED_CODES, MiB, P, TWO_47, TWO_48, mmap, newProcess, newVm, putMem, raw, statusOf } from './rest-kit.js'

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 0x5eed_2026
const RUNS = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : 3000

/** A live process, mapping and VM the fuzzer aims at (rebuilt when a fuzzed DELETE removes them). */
interface Target { pid: number, addr: number, vm: number }

/** Values resolved against the current target only when the request is sent. */
class Rel { constructor (readonly pages: number, readonly offset: number) {} }
type Id = { kind: 'pid' } | { kind: 'vm' } | { kind: 'gpu' } | { kind: 'raw', text: string }
type Num = Rel | number
type QueryValue = { num: Num, hex: boolean } | { text: string }

interface FuzzRequest {
  route: number
  /** another method than the route's, now and then */
  method: string | null
  id: Id
  query: Array<[string, QueryValue]> | null
  body:
  | { kind: 'none' }
  | { kind: 'json', value: unknown }
  | { kind: 'text', text: string, contentType: string | undefined }
  | { kind: 'bytes', bytes: Uint8Array, contentType: string | undefined }
}

/** Every route, with the kind of id it takes. */
const ROUTES: Array<[string, string, 'pid' | 'vm' | 'gpu' | null]> = [
  ['POST', '/v1/processes', null],
  ['GET', '/v1/processes/:id', 'pid'],
  ['DELETE', '/v1/processes/:id', 'pid'],
  ['POST', '/v1/processes/:id/fork', 'pid'],
  ['POST', '/v1/processes/:id/mmap', 'pid'],
  ['POST', '/v1/processes/:id/munmap', 'pid'],
  ['POST', '/v1/processes/:id/mremap', 'pid'],
  ['POST', '/v1/processes/:id/mprotect', 'pid'],
  ['PUT', '/v1/processes/:id/memory', 'pid'],
  ['GET', '/v1/processes/:id/memory', 'pid'],
  ['GET', '/v1/processes/:id/residency', 'pid'],
  ['POST', '/v1/vms', null],
  ['DELETE', '/v1/vms/:id', 'vm'],
  ['POST', '/v1/vms/:id/madvise', 'vm'],
  ['GET', '/v1/vms/:id/attributes', 'vm'],
  ['POST', '/v1/vms/:id/prefetch', 'vm'],
  ['POST', '/v1/vms/:id/faults', 'vm'],
  ['POST', '/v1/vms/:id/faults/batch', 'vm'],
  ['GET', '/v1/vms/:id/snapshot', 'vm'],
  ['GET', '/v1/vms/:id/ranges', 'vm'],
  ['POST', '/v1/vms/:id/exec', 'vm'],
  ['GET', '/v1/topology', null],
  ['GET', '/v1/owners', null],
  ['GET', '/v1/gpus/:id', 'gpu'],
  ['GET', '/healthz', null],
  ['GET', '/readyz', null],
  ['GET', '/metrics', null],
  ['GET', '/documentation/json', null],
  ['POST', '/v1/:id', 'pid']
]

// ------------------------------------------------------------ arbitraries

/** Addresses: near the target mapping (aligned or not), or the edges of the contract. */
const address: fc.Arbitrary<Num> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -4, max: 24 }).map((k) => new Rel(k, 0)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 1, max: P - 1 })).map(([k, o]) => new Rel(k, o)) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, -1, -P, P, 0x10000, TWO_47 - P, TWO_47 - 4, TWO_47, TWO_48 - P, TWO_48 - 1, TWO_48, 2 ** 53, 1.5) }
)

/**
 * Lengths: small multiples of a page up to 2 MiB, odd sizes, zero, negative,
 * and sizes at or beyond the limits (which the contract rejects before any
 * work). Sizes between 2 MiB and the limits are left out to keep the run short.
 */
const length: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 16 }).map((k) => k * P) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 3, 4095, 4097, -P, 1.5, 2 * MiB, 64 * MiB + 1, 1024 * MiB + 1, TWO_47, TWO_48 - 1, TWO_48) }
)

const word = fc.constantFrom('rw', 'r', 'none', 'device', 'system', 'undefined', 'global', 'cpu', 'read', 'write', 'atomic', 'gpu0', '', 'RW')
const gpuRef = fc.oneof(fc.record({ gpu: fc.integer({ min: -1, max: 4 }) }), fc.record({ gpu: fc.string({ maxLength: 3 }) }), fc.constant({}))

const execOp = fc.record({
  op: fc.constantFrom('read', 'write', 'fill', 'read_u32', 'write_u32', 'atomic_add', 'copy', 'checksum', 'nope'),
  addr: address,
  length,
  byte: fc.integer({ min: -1, max: 256 }),
  value: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(-1, 2 ** 32, 1.5)),
  data: fc.oneof(fc.base64String({ maxLength: 24 }), fc.string({ maxLength: 8 })),
  src: address,
  dst: address
}, { requiredKeys: ['op'] })

const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: address },
  { weight: 3, arbitrary: length },
  { weight: 2, arbitrary: word },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: gpuRef },
  { weight: 1, arbitrary: fc.integer({ min: -1, max: 5 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }
)

/** Bodies built from the contract's own field names: many are valid, most are subtly not. */
const nearValid: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({
    addr: address,
    length,
    oldLength: length,
    newLength: length,
    newAddr: address,
    dontUnmap: fc.oneof(fc.boolean(), fc.constant('true')),
    prot: word,
    shared: fc.oneof(fc.boolean(), fc.constant(1)),
    preferredLocation: fc.oneof(word, gpuRef),
    atomic: word,
    location: fc.oneof(word, gpuRef),
    access: word,
    gpu: fc.integer({ min: -1, max: 5 }),
    pid: fc.oneof(fc.constant('self'), fc.integer({ min: -1, max: 50 })),
    concurrency: fc.integer({ min: -1, max: 8 }),
    bogus: fc.jsonValue({ maxDepth: 1 })
  }, { requiredKeys: [] }),
  fc.record({ ops: fc.array(execOp, { maxLength: 4 }) }),
  fc.record({ faults: fc.array(fc.record({ addr: address, access: word }), { maxLength: 4 }), concurrency: fc.integer({ min: 0, max: 4 }) }, { requiredKeys: ['faults'] }),
  fc.dictionary(fc.constantFrom('addr', 'length', 'prot', 'ops', 'gpu', 'pid', 'location', 'x'), fieldValue, { maxKeys: 4 })
)

const contentType = fc.constantFrom(undefined, 'application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8', 'image/png')

/** Mostly-valid values of each field of the contract's bodies (the rest from fieldValue). */
const FIELD: Record<string, fc.Arbitrary<unknown>> = {
  addr: address,
  newAddr: address,
  src: address,
  dst: address,
  length,
  oldLength: length,
  newLength: length,
  prot: fc.constantFrom('rw', 'r', 'none'),
  shared: fc.boolean(),
  dontUnmap: fc.boolean(),
  gpu: fc.integer({ min: 0, max: 2 }),
  pid: fc.constant('self'),
  preferredLocation: fc.oneof(fc.constantFrom('device', 'system'), fc.record({ gpu: fc.integer({ min: 0, max: 2 }) })),
  location: fc.oneof(fc.constantFrom('device', 'system'), fc.record({ gpu: fc.integer({ min: 0, max: 2 }) })),
  atomic: fc.constantFrom('undefined', 'device', 'global', 'cpu'),
  access: fc.constantFrom('read', 'write', 'atomic'),
  ops: fc.array(execOp, { minLength: 1, maxLength: 4 }),
  faults: fc.array(fc.record({ addr: address, access: fc.constantFrom('read', 'write', 'atomic') }), { minLength: 1, maxLength: 4 }),
  concurrency: fc.integer({ min: 1, max: 4 })
}

/** Per route with a JSON body: [required fields, optional fields]. */
const BODY_FIELDS: Record<string, [string[], string[]]> = {
  'POST /v1/processes/:id/mmap': [['length'], ['addr', 'prot', 'shared']],
  'POST /v1/processes/:id/munmap': [['addr', 'length'], []],
  'POST /v1/processes/:id/mremap': [['addr', 'oldLength', 'newLength'], ['newAddr', 'dontUnmap']],
  'POST /v1/processes/:id/mprotect': [['addr', 'length', 'prot'], []],
  'POST /v1/vms': [['gpu', 'pid'], []],
  'POST /v1/vms/:id/madvise': [['addr', 'length'], ['preferredLocation', 'atomic']],
  'POST /v1/vms/:id/prefetch': [['addr', 'length', 'location'], []],
  'POST /v1/vms/:id/faults': [['addr', 'access'], []],
  'POST /v1/vms/:id/faults/batch': [['faults'], ['concurrency']],
  'POST /v1/vms/:id/exec': [['ops'], []]
}

/** A body shaped for the route: usually well-formed, sometimes one field off, missing or extra. */
function routeBody (route: number): fc.Arbitrary<FuzzRequest['body']> {
  const [method, pattern] = ROUTES[route] as [string, string, unknown]
  const spec = BODY_FIELDS[`${method} ${pattern}`]
  if (spec === undefined) return body
  const [required, optional] = spec
  const shape: Record<string, fc.Arbitrary<unknown>> = {}
  for (const k of [...required, ...optional]) shape[k] = FIELD[k] as fc.Arbitrary<unknown>
  const good = fc.record(shape, { requiredKeys: required })
  const mutated = fc.oneof(
    { weight: 6, arbitrary: good },
    { weight: 1, arbitrary: fc.tuple(good, fc.constantFrom(...required, ...optional), fieldValue).map(([b, k, v]) => ({ ...b, [k]: v })) },
    { weight: 1, arbitrary: fc.tuple(good, fc.constantFrom(...required)).map(([b, k]) => { const { [k]: _gone, ...rest } = b; return rest }) },
    { weight: 1, arbitrary: fc.tuple(good, fc.jsonValue({ maxDepth: 1 })).map(([b, v]) => ({ ...b, extra: v })) }
  )
  return fc.oneof(
    { weight: 3, arbitrary: mutated.map((value) => ({ kind: 'json' as const, value })) },
    { weight: 1, arbitrary: body }
  )
}

const body: fc.Arbitrary<FuzzRequest['body']> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 6, arbitrary: nearValid.map((value) => ({ kind: 'json' as const, value })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => ({ kind: 'json' as const, value })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('text' as const), text: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', ' ', '{', '{}', '[]', 'null', '{"__proto__":{}}', '{"length":4096', '\u0000')), contentType }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 300 }), contentType }) }
)

const id: fc.Arbitrary<Id> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<Id>({ kind: 'pid' }, { kind: 'vm' }, { kind: 'gpu' }) },
  { weight: 1, arbitrary: fc.nat({ max: 2 ** 31 }).map((n): Id => ({ kind: 'raw', text: String(n) })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((s): Id => ({ kind: 'raw', text: encodeURIComponent(s) })) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%00', '..', '.', '', '-0', '0x1', '1e2', '00000000001', '%2F', '9'.repeat(120)).map((text): Id => ({ kind: 'raw', text })) }
)

const queryValue: fc.Arbitrary<QueryValue> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ num: address, hex: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ num: length, hex: fc.boolean() }) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('0x', '%zz', '-0', '1e3', '0X1000', '+1')).map((text) => ({ text })) }
)

const query: fc.Arbitrary<FuzzRequest['query']> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 4, arbitrary: fc.tuple(queryValue, queryValue).map(([a, l]): Array<[string, QueryValue]> => [['addr', a], ['length', l]]) },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.constantFrom('addr', 'length', 'x', 'addr[]', ''), queryValue), { maxLength: 4 }) }
)

const otherMethod = fc.oneof(
  { weight: 12, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') }
)

const request: fc.Arbitrary<FuzzRequest> = fc.nat({ max: ROUTES.length - 1 }).chain((route) =>
  fc.record({ route: fc.constant(route), method: otherMethod, id, query, body: routeBody(route) }))

// ------------------------------------------------------------ sending

function resolveNum (n: Num, target: Target): number {
  return n instanceof Rel ? target.addr + n.pages * P + n.offset : n
}

function render (r: FuzzRequest, target: Target): { method: string, url: string, payload?: string | Buffer, contentType?: string } {
  const [routeMethod, pattern, kind] = ROUTES[r.route] as [string, string, string | null]
  const method = r.method ?? routeMethod
  let idText = ''
  if (r.id.kind === 'raw') idText = r.id.text
  else {
    const want = kind ?? r.id.kind
    idText = String(want === 'pid' ? target.pid : want === 'vm' ? target.vm : 0)
  }
  let url = pattern.replace(':id', idText)
  if (r.query !== null) {
    const parts = r.query.map(([k, v]) => {
      if ('text' in v) return `${k}=${/%zz/.test(v.text) ? v.text : encodeURIComponent(v.text)}`
      const n = resolveNum(v.num, target)
      const s = v.hex && Number.isInteger(n) && n >= 0 ? `0x${n.toString(16)}` : String(n)
      return `${k}=${encodeURIComponent(s)}`
    })
    url += `?${parts.join('&')}`
  }
  switch (r.body.kind) {
    case 'none':
      return { method, url }
    case 'json':
      return {
        method,
        url,
        contentType: 'application/json',
        payload: JSON.stringify(r.body.value, (k, v: unknown) => {
          if (v instanceof Rel) return resolveNum(v, target)
          if (k === 'pid' && v === 'self') return target.pid
          return v
        }) ?? 'null'
      }
    case 'text':
      return { method, url, payload: r.body.text, ...(r.body.contentType !== undefined ? { contentType: r.body.contentType } : {}) }
    case 'bytes':
      return { method, url, payload: Buffer.from(r.body.bytes), ...(r.body.contentType !== undefined ? { contentType: r.body.contentType } : {}) }
  }
}

/** What is wrong with a response, or null. */
function violation (method: string, res: LightMyRequestResponse): string | null {
  if (res.statusCode >= 500) return `status ${res.statusCode}: ${res.body.slice(0, 300)}`
  // A HEAD reply has no body to check.
  if (res.statusCode < 400 || method === 'HEAD') return null
  let b: { statusCode?: unknown, code?: unknown, error?: unknown, message?: unknown }
  try { b = res.json() } catch { return `error ${res.statusCode} without a JSON body: ${res.body.slice(0, 100)}` }
  if (typeof b.code !== 'string' || !(DOCUMENTED_CODES as readonly string[]).includes(b.code)) return `undocumented code ${String(b.code)} (${res.statusCode})`
  if (b.statusCode !== res.statusCode || typeof b.error !== 'string' || typeof b.message !== 'string') return `malformed error body ${res.body.slice(0, 200)}`
  // E_VALIDATION is 400, or the matching 4xx for a body too large or of an unsupported type.
  const expected = statusOf(b.code)
  if (b.code === 'E_VALIDATION' ? ![400, 413, 415].includes(res.statusCode) : res.statusCode !== expected) {
    return `code ${b.code} came with status ${res.statusCode}, not ${expected}`
  }
  return null
}

async function ensureTarget (m: RestMachine, target: Target | null): Promise<Target> {
  const c = m.cluster.coordinator
  let pid = target?.pid
  let fresh = false
  try { if (pid === undefined) throw new Error('none'); c.process(pid) } catch { pid = await newProcess(m.app); fresh = true }
  let addr = target?.addr ?? 0
  if (fresh) {
    addr = await mmap(m.app, pid, { length: 16 * P })
    await putMem(m.app, pid, addr, Buffer.alloc(8 * P, 0x5a))
  }
  else if (!m.api.getProcess(pid).vmas.some((v) => v.addr <= addr && addr < v.addr + v.length)) {
    // Fuzzed munmap/mremap took the target mapping away: put one back.
    await mmap(m.app, pid, { addr, length: 16 * P })
  }
  let vm = target?.vm
  try { if (vm === undefined || fresh) throw new Error('none'); c.vms.get(vm) } catch { vm = await newVm(m.app, 0, pid) }
  return { pid, addr, vm }
}

t.test(`fuzzing every route: never a 5xx, always a documented code (seed ${SEED}, ${RUNS} runs)`, async (t) => {
  const m = await restMachine({ gpus: 2, vram: 16 * MiB })
  t.teardown(m.close)
  let target = await ensureTarget(m, null)
  const seen = new Map<string, number>()
  const statuses = new Map<number, number>()
  const codes = new Set<string>()
  const methods = new Set<string>()
  let last = ''
  const started = Date.now()
  const result = await fc.check(fc.asyncProperty(request, async (r) => {
    target = await ensureTarget(m, target)
    const req = render(r, target)
    last = `${req.method} ${req.url} ${req.contentType ?? '(no content-type)'} ${typeof req.payload === 'string' ? req.payload.slice(0, 200) : req.payload !== undefined ? `<${req.payload.length} bytes>` : ''}`
    const res = await raw(m.app, req)
    const [method, pattern] = ROUTES[r.route] as [string, string, unknown]
    if (r.method !== null) methods.add(r.method)
    seen.set(`${method} ${pattern}`, (seen.get(`${method} ${pattern}`) ?? 0) + 1)
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 400) { try { codes.add(res.json().code) } catch { /* reported by violation */ } }
    const v = violation(req.method, res)
    if (v !== null) throw new Error(`${v}\n  request: ${last}`)
  }), { seed: SEED, numRuns: RUNS, endOnFailure: true })
  t.notOk(result.failed, result.failed ? `counterexample (replay with FC_SEED=${SEED}): ${String(result.errorInstance instanceof Error ? result.errorInstance.message : result.errorInstance)}` : 'no violation')
  t.equal(result.numRuns, RUNS, 'every run executed')
  if (result.failed) return

  // The fuzzer reached every route and both sides of the contract.
  for (const [method, pattern] of ROUTES) t.ok((seen.get(`${method} ${pattern}`) ?? 0) > 0, `${method} ${pattern} was fuzzed`)
  const count = (lo: number, hi: number): number => [...statuses].filter(([s]) => s >= lo && s < hi).reduce((n, [, k]) => n + k, 0)
  t.ok(count(200, 300) > RUNS / 20, `some requests succeeded (${count(200, 300)})`)
  t.ok(count(400, 500) > RUNS / 4, `many were rejected (${count(400, 500)})`)
  for (const code of ['E_VALIDATION', 'E_NOT_FOUND', 'EINVAL', 'EFAULT', 'ENOENT']) t.ok(codes.has(code), `${code} seen`)
  t.ok(methods.size >= 5, `other methods tried too (${[...methods].join(' ')})`)
  t.comment(`statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}; codes ${[...codes].sort().join(' ')}; ${Date.now() - started} ms`)

  // The machine still works after all of it.
  target = await ensureTarget(m, target)
  const w = await raw(m.app, { method: 'PUT', url: `/v1/processes/${target.pid}/memory?addr=${target.addr}`, payload: Buffer.from('alive'), contentType: 'application/octet-stream' })
  const rd = await raw(m.app, { method: 'GET', url: `/v1/processes/${target.pid}/memory?addr=${target.addr}&length=5` })
  t.equal(w.statusCode === 204 || w.statusCode === 422, true, `CPU write after fuzzing (${w.statusCode})`)
  if (w.statusCode === 204) t.equal(rd.body, 'alive', 'and read back')
  t.equal((await raw(m.app, { method: 'GET', url: '/healthz' })).statusCode, 200)
})

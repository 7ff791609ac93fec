/**
 * Bad input at every endpoint with a path id, a body or a query (DESIGN.md
 * §2 "Malformed requests"): each rejected request gets the documented code
 * and status, and changes nothing — the VMAs, bytes, residency, ranges,
 * attributes, VRAM use and the number of processes and VMs read the same
 * before and after.
 */
import t, { type Test } from 'tap'
import { bytes } from '../../helpers/mm-harness.js'
import { restMachine, type RestMachine } from '../../helpers/rest.js'
import {
  MiB, P, TWO_47, TWO_48, type Watch, fingerprint, hex, isError, mmap, newProcess, newVm, putMem, raw, req, statusOf
} from './rest-kit.js'

interface Case {
  name: string
  method: string
  url: string
  /** JSON value to send as the body (serialised) */
  body?: unknown
  /** raw payload, sent as is */
  payload?: string | Buffer
  contentType?: string
  code: string
  /** when not the code's usual status (413 for oversized bodies) */
  status?: number
  /**
   * Why this (errno, not malformed-input) failure may leave state behind, as
   * the kernel's would: only the code and status are asserted then.
   */
  mayChange?: string
}

interface Fixture {
  m: RestMachine
  pid: number
  /** 16 pages, written; the last two made read-only */
  a: number
  ro: number
  none: number
  shm: number
  vm: number
  /** a VM on gpu3: another owner group */
  vmFar: number
  w: Watch
}

async function fixture (t: Test): Promise<Fixture> {
  const m = await restMachine({ gpus: 4, vram: 16 * MiB })
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  await putMem(app, pid, a, bytes(16 * P, 42))
  const ro = a + 14 * P
  const mp = await req(app, 'POST', `/v1/processes/${pid}/mprotect`, { addr: ro, length: 2 * P, prot: 'r' })
  if (mp.statusCode !== 204) throw new Error(mp.body)
  const none = await mmap(app, pid, { length: P, prot: 'none' })
  const shm = await mmap(app, pid, { length: 2 * P, shared: true })
  await putMem(app, pid, shm, bytes(2 * P, 43))
  const vm = await newVm(app, 0, pid)
  const vmFar = await newVm(app, 3, pid)
  // Some VM state worth protecting: an attribute span and a range mapped in place.
  await req(app, 'POST', `/v1/vms/${vm}/madvise`, { addr: a + 4 * P, length: 4 * P, preferredLocation: 'system', atomic: 'global' })
  const f = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a + 4 * P, access: 'read' })
  if (f.statusCode !== 200 || f.json().location !== 'system') throw new Error(`fixture fault: ${f.body}`)
  return {
    m, pid, a, ro, none, shm, vm, vmFar,
    w: { pids: [pid], vms: [vm, vmFar], windows: [[pid, a, 16 * P], [pid, shm, 2 * P], [pid, none - 4 * P, 6 * P]] }
  }
}

async function send (app: RestMachine['app'], c: Case): Promise<Awaited<ReturnType<typeof raw>>> {
  if (c.body !== undefined) return await req(app, c.method, c.url, c.body)
  return await raw(app, {
    method: c.method,
    url: c.url,
    ...(c.payload !== undefined ? { payload: c.payload } : {}),
    ...(c.contentType !== undefined ? { contentType: c.contentType } : {})
  })
}

/** Runs cases, asserting the code and status and that the fingerprint did not move. */
async function runCases (t: Test, f: Fixture, cases: Case[]): Promise<void> {
  let base = await fingerprint(f.m, f.w)
  for (const c of cases) {
    const res = await send(f.m.app, c)
    isError(t, res, c.code, c.status ?? statusOf(c.code), `${c.method} ${c.url.slice(0, 80)} ${c.name}`)
    const now = await fingerprint(f.m, f.w)
    if (c.mayChange === undefined) t.same(now, base, `${c.name}: nothing changed`)
    base = now
  }
}

const BIG_JSON = (() => {
  const b = Buffer.alloc(16 * MiB + 16, 0x20)
  b.write('{"x":', 0)
  b.write('1}', b.length - 2)
  return b
})()

/**
 * Every way to break one JSON body, from a valid one: the classic
 * malformed/empty/non-object bodies, unknown and missing fields, wrong types,
 * negative / fractional / ≥ 2^48 numbers, zero lengths, and (where the rule
 * exists) unaligned addresses and lengths.
 */
function bodyCases (method: string, url: string, valid: Record<string, unknown>, o: { ints: string[], lengths: string[], aligned: string[], optional?: string[] }): Case[] {
  const json = 'application/json'
  const out: Case[] = [
    { name: 'malformed JSON', method, url, payload: '{"addr": 4096,', contentType: json, code: 'E_VALIDATION' },
    { name: 'truncated JSON', method, url, payload: JSON.stringify(valid).slice(0, -1), contentType: json, code: 'E_VALIDATION' },
    { name: 'not JSON at all', method, url, payload: 'addr=1&length=2', contentType: json, code: 'E_VALIDATION' },
    { name: 'empty JSON body', method, url, payload: '', contentType: json, code: 'E_VALIDATION' },
    { name: 'no body', method, url, code: 'E_VALIDATION' },
    { name: 'null body', method, url, payload: 'null', contentType: json, code: 'E_VALIDATION' },
    { name: 'array body', method, url, body: [valid], code: 'E_VALIDATION' },
    { name: 'number body', method, url, payload: '4096', contentType: json, code: 'E_VALIDATION' },
    { name: 'string body', method, url, payload: '"x"', contentType: json, code: 'E_VALIDATION' },
    { name: 'JSON sent as text/plain', method, url, payload: JSON.stringify(valid), contentType: 'text/plain', code: 'E_VALIDATION' },
    { name: 'prototype poisoning', method, url, payload: JSON.stringify(valid).replace('{', '{"__proto__":{"length":1},'), contentType: json, code: 'E_VALIDATION' },
    { name: 'unknown field', method, url, body: { ...valid, bogus: 1 }, code: 'E_VALIDATION' },
    { name: 'JSON body over 16 MiB', method, url, payload: BIG_JSON, contentType: json, code: 'E_VALIDATION', status: 413 }
  ]
  for (const k of Object.keys(valid)) {
    if (o.optional?.includes(k) === true) continue
    const { [k]: _drop, ...rest } = valid
    out.push({ name: `missing ${k}`, method, url, body: rest, code: 'E_VALIDATION' })
  }
  for (const k of o.ints) {
    const v = valid[k] as number
    out.push(
      { name: `${k} as a string`, method, url, body: { ...valid, [k]: String(v) }, code: 'E_VALIDATION' },
      { name: `${k} as a hex string`, method, url, body: { ...valid, [k]: hex(v) }, code: 'E_VALIDATION' },
      { name: `${k} null`, method, url, body: { ...valid, [k]: null }, code: 'E_VALIDATION' },
      { name: `${k} boolean`, method, url, body: { ...valid, [k]: true }, code: 'E_VALIDATION' },
      { name: `${k} negative`, method, url, body: { ...valid, [k]: -v }, code: 'E_VALIDATION' },
      { name: `${k} -1`, method, url, body: { ...valid, [k]: -1 }, code: 'E_VALIDATION' },
      { name: `${k} non-integer`, method, url, body: { ...valid, [k]: 1.5 }, code: 'E_VALIDATION' },
      { name: `${k} = 2^48`, method, url, body: { ...valid, [k]: TWO_48 }, code: 'E_VALIDATION' },
      { name: `${k} = 2^53`, method, url, body: { ...valid, [k]: 2 ** 53 }, code: 'E_VALIDATION' },
      { name: `${k} = 1e400`, method, url, payload: JSON.stringify({ ...valid, [k]: 0 }).replace(`"${k}":0`, `"${k}":1e400`), contentType: json, code: 'E_VALIDATION' }
    )
  }
  for (const k of o.lengths) out.push({ name: `${k} zero`, method, url, body: { ...valid, [k]: 0 }, code: 'E_VALIDATION' })
  for (const k of o.aligned) {
    const v = valid[k] as number
    out.push(
      { name: `${k} unaligned (+1)`, method, url, body: { ...valid, [k]: v + 1 }, code: 'EINVAL' },
      { name: `${k} unaligned (+2048)`, method, url, body: { ...valid, [k]: v + 2048 }, code: 'EINVAL' }
    )
  }
  return out
}

/** Bad path ids for a route: malformed (400) and unknown (404, with a valid body). */
function idCases (method: string, pattern: string, unknown: number, valid?: unknown): Case[] {
  const at = (id: string): string => pattern.replace(':id', id)
  const body = valid !== undefined ? { body: valid } : {}
  return [
    ...['abc', '-1', '1.5', '0x1', '1e3', '1234567890', ' 1', '%20'].map((id) => ({ name: `id ${JSON.stringify(id)}`, method, url: at(id), ...body, code: 'E_VALIDATION' })),
    { name: 'bad percent-escape in the id', method, url: at('%zz'), ...body, code: 'E_VALIDATION' },
    { name: 'lone % in the id', method, url: at('%'), ...body, code: 'E_VALIDATION' },
    { name: '300-character id', method, url: at('9'.repeat(300)), ...body, code: 'E_VALIDATION' },
    { name: 'unknown id', method, url: at(String(unknown)), ...body, code: 'E_NOT_FOUND' }
  ]
}

/** Query strings: missing/extra/repeated keys, malformed and out-of-range numbers, zero lengths. */
function queryCases (method: string, base: string, addr: number, length: number | null, extra: Partial<Case> = {}): Case[] {
  const q = (a: string, l?: string): string => `${base}?addr=${a}${l !== undefined ? `&length=${l}` : ''}`
  const L = length !== null ? String(length) : undefined
  const out: Case[] = [
    { name: 'no query', method, url: base, code: 'E_VALIDATION' },
    { name: 'unknown query key', method, url: `${q(String(addr), L)}&bogus=1`, code: 'E_VALIDATION' },
    { name: 'repeated addr', method, url: `${q(String(addr), L)}&addr=${addr}`, code: 'E_VALIDATION' },
    { name: 'addr[] key', method, url: `${base}?addr[]=${addr}${L !== undefined ? `&length=${L}` : ''}`, code: 'E_VALIDATION' }
  ]
  const badNumbers = ['-1', '-4096', '1.5', '4096.0', '1e3', '', '0x', '0xg', 'abc', '+4096', ' 4096', String(TWO_48), hex(TWO_48), '0x' + 'f'.repeat(14), '9'.repeat(17), '%zz']
  for (const s of badNumbers) out.push({ name: `addr ${JSON.stringify(s)}`, method, url: q(s, L), code: 'E_VALIDATION' })
  if (L !== undefined) {
    out.push({ name: 'missing length', method, url: q(String(addr)), code: 'E_VALIDATION' })
    out.push({ name: 'repeated length', method, url: `${q(String(addr), L)}&length=${L}`, code: 'E_VALIDATION' })
    for (const s of ['0', '0x0', '-4096', '1.5', 'abc', String(TWO_48), hex(TWO_48)]) {
      out.push({ name: `length ${JSON.stringify(s)}`, method, url: q(String(addr), s), code: 'E_VALIDATION' })
    }
  }
  return out.map((c) => ({ ...c, ...extra }))
}

t.test('POST /v1/processes and fork: no body, {} or an empty JSON body only', async (t) => {
  const f = await fixture(t)
  const cases: Case[] = []
  for (const url of ['/v1/processes', `/v1/processes/${f.pid}/fork`]) {
    cases.push(
      { name: 'non-empty object', method: 'POST', url, body: { pid: 1 }, code: 'E_VALIDATION' },
      { name: 'array', method: 'POST', url, body: [], code: 'E_VALIDATION' },
      { name: 'number', method: 'POST', url, payload: '0', contentType: 'application/json', code: 'E_VALIDATION' },
      { name: 'string', method: 'POST', url, payload: '""', contentType: 'application/json', code: 'E_VALIDATION' },
      { name: 'false', method: 'POST', url, payload: 'false', contentType: 'application/json', code: 'E_VALIDATION' },
      { name: 'malformed JSON', method: 'POST', url, payload: '{', contentType: 'application/json', code: 'E_VALIDATION' },
      { name: 'whitespace JSON', method: 'POST', url, payload: '  ', contentType: 'application/json', code: 'E_VALIDATION' },
      { name: 'text body', method: 'POST', url, payload: 'please', contentType: 'text/plain', code: 'E_VALIDATION' },
      { name: 'JSON body over 16 MiB', method: 'POST', url, payload: BIG_JSON, contentType: 'application/json', code: 'E_VALIDATION', status: 413 }
    )
  }
  cases.push(...idCases('POST', '/v1/processes/:id/fork', 424242))
  await runCases(t, f, cases)
})

t.test('GET and DELETE /v1/processes/:pid', async (t) => {
  const f = await fixture(t)
  await runCases(t, f, [
    ...idCases('GET', '/v1/processes/:id', 424242),
    ...idCases('DELETE', '/v1/processes/:id', 424242),
    { name: 'malformed JSON body on DELETE', method: 'DELETE', url: `/v1/processes/${f.pid}`, payload: '{', contentType: 'application/json', code: 'E_VALIDATION' },
    { name: 'trailing slash', method: 'GET', url: `/v1/processes/${f.pid}/`, code: 'E_NOT_FOUND' },
    { name: 'unknown method', method: 'PATCH', url: `/v1/processes/${f.pid}`, body: {}, code: 'E_NOT_FOUND' },
    { name: 'unknown route', method: 'GET', url: '/v1/nothing-here', code: 'E_NOT_FOUND' }
  ])
  // A process that existed and is gone is unknown too.
  const gone = await newProcess(f.m.app)
  t.equal((await req(f.m.app, 'DELETE', `/v1/processes/${gone}`)).statusCode, 204)
  await runCases(t, f, [
    { name: 'exited pid', method: 'GET', url: `/v1/processes/${gone}`, code: 'E_NOT_FOUND' },
    { name: 'exited pid: mmap', method: 'POST', url: `/v1/processes/${gone}/mmap`, body: { length: P }, code: 'E_NOT_FOUND' },
    { name: 'exited pid: fork', method: 'POST', url: `/v1/processes/${gone}/fork`, code: 'E_NOT_FOUND' },
    { name: 'exited pid: vm', method: 'POST', url: '/v1/vms', body: { gpu: 0, pid: gone }, code: 'E_NOT_FOUND' }
  ])
})

t.test('mmap', async (t) => {
  const f = await fixture(t)
  const url = `/v1/processes/${f.pid}/mmap`
  const valid = { length: 4 * P, addr: f.a + 64 * P }
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['length', 'addr'], lengths: ['length'], aligned: ['length', 'addr'], optional: ['addr'] }),
    { name: 'prot rwx', method: 'POST', url, body: { length: P, prot: 'rwx' }, code: 'E_VALIDATION' },
    { name: 'prot as a number', method: 'POST', url, body: { length: P, prot: 3 }, code: 'E_VALIDATION' },
    { name: 'shared as a string', method: 'POST', url, body: { length: P, shared: 'yes' }, code: 'E_VALIDATION' },
    { name: 'unaligned length, no addr', method: 'POST', url, body: { length: 100 }, code: 'EINVAL' },
    { name: 'fixed mapping ending beyond user space', method: 'POST', url, body: { length: 2 * P, addr: TWO_47 - P }, code: 'ENOMEM' },
    { name: 'fixed mapping at 2^47', method: 'POST', url, body: { length: P, addr: TWO_47 }, code: 'ENOMEM' },
    { name: 'fixed mapping below mmap_min_addr', method: 'POST', url, body: { length: P, addr: 0 }, code: 'EPERM' },
    { name: 'MAP_FIXED over memory, unaligned length', method: 'POST', url, body: { length: P + 1, addr: f.a }, code: 'EINVAL' },
    ...idCases('POST', '/v1/processes/:id/mmap', 424242, { length: P })
  ])
})

t.test('munmap', async (t) => {
  const f = await fixture(t)
  const url = `/v1/processes/${f.pid}/munmap`
  const valid = { addr: f.a, length: 2 * P }
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['addr', 'length'], lengths: ['length'], aligned: ['addr', 'length'] }),
    { name: 'span beyond user space', method: 'POST', url, body: { addr: TWO_47 - P, length: 2 * P }, code: 'EINVAL' },
    ...idCases('POST', '/v1/processes/:id/munmap', 424242, valid)
  ])
})

t.test('mremap', async (t) => {
  const f = await fixture(t)
  const url = `/v1/processes/${f.pid}/mremap`
  const valid = { addr: f.a, oldLength: 2 * P, newLength: 2 * P, newAddr: f.a + 1024 * P }
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['addr', 'oldLength', 'newLength', 'newAddr'], lengths: ['oldLength', 'newLength'], aligned: ['addr', 'oldLength', 'newLength', 'newAddr'], optional: ['newAddr'] }),
    { name: 'dontUnmap as a string', method: 'POST', url, body: { ...valid, dontUnmap: 'true' }, code: 'E_VALIDATION' },
    { name: 'dontUnmap with a size change', method: 'POST', url, body: { ...valid, newLength: 4 * P, dontUnmap: true }, code: 'EINVAL' },
    { name: 'overlapping move', method: 'POST', url, body: { addr: f.a, oldLength: 4 * P, newLength: 4 * P, newAddr: f.a + 2 * P }, code: 'EINVAL' },
    { name: 'old span not mapped', method: 'POST', url, body: { addr: f.a - 64 * P, oldLength: P, newLength: 2 * P }, code: 'EFAULT' },
    { name: 'old span across two mappings', method: 'POST', url, body: { addr: f.a, oldLength: 32 * P, newLength: 32 * P, newAddr: f.a + 1024 * P }, code: 'EFAULT' },
    { name: 'target beyond user space', method: 'POST', url, body: { ...valid, newAddr: TWO_47 - P }, code: 'ENOMEM' },
    { name: 'target below mmap_min_addr', method: 'POST', url, body: { ...valid, newAddr: 0 }, code: 'EPERM' },
    ...idCases('POST', '/v1/processes/:id/mremap', 424242, valid)
  ])
})

t.test('mprotect', async (t) => {
  const f = await fixture(t)
  const url = `/v1/processes/${f.pid}/mprotect`
  const valid = { addr: f.a, length: 2 * P, prot: 'none' }
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['addr', 'length'], lengths: ['length'], aligned: ['addr', 'length'] }),
    { name: 'prot unknown', method: 'POST', url, body: { ...valid, prot: 'x' }, code: 'E_VALIDATION' },
    { name: 'prot upper case', method: 'POST', url, body: { ...valid, prot: 'RW' }, code: 'E_VALIDATION' },
    { name: 'span not fully mapped', method: 'POST', url, body: { addr: f.a, length: 64 * P, prot: 'r' }, code: 'ENOMEM' },
    ...idCases('POST', '/v1/processes/:id/mprotect', 424242, valid)
  ])
})

t.test('GET /memory (CPU read)', async (t) => {
  const f = await fixture(t)
  const base = `/v1/processes/${f.pid}/memory`
  const rd = (addr: number | string, length: number | string): string => `${base}?addr=${addr}&length=${length}`
  await runCases(t, f, [
    ...queryCases('GET', base, f.a, P),
    { name: 'length over 64 MiB (decimal)', method: 'GET', url: rd(f.a, 64 * MiB + 1), code: 'E_VALIDATION' },
    { name: 'length over 64 MiB (hex)', method: 'GET', url: rd(hex(f.a), hex(64 * MiB + 1)), code: 'E_VALIDATION' },
    { name: 'outside any mapping', method: 'GET', url: rd(f.a - 64 * P, 1), code: 'EFAULT' },
    { name: 'runs off the end of a mapping', method: 'GET', url: rd(f.a + 16 * P - 2, 4), code: 'EFAULT' },
    { name: 'prot none', method: 'GET', url: rd(f.none, 4), code: 'EFAULT' },
    { name: 'at 2^47', method: 'GET', url: rd(hex(TWO_47), 4), code: 'EFAULT' },
    { name: 'just below 2^48', method: 'GET', url: rd(hex(TWO_48 - 1), 1), code: 'EFAULT' },
    { name: '64 MiB of nothing', method: 'GET', url: rd(P * 16, 64 * MiB), code: 'EFAULT' },
    ...idCases('GET', `/v1/processes/:id/memory?addr=${f.a}&length=4`, 424242)
  ])
})

t.test('PUT /memory (CPU write): nothing is written when any byte would fault', async (t) => {
  const f = await fixture(t)
  const base = `/v1/processes/${f.pid}/memory`
  const data = { payload: Buffer.from('clobber'), contentType: 'application/octet-stream' }
  await runCases(t, f, [
    ...queryCases('PUT', base, f.a, null, data),
    { name: 'length in the query', method: 'PUT', url: `${base}?addr=${f.a}&length=7`, ...data, code: 'E_VALIDATION' },
    { name: 'empty body', method: 'PUT', url: `${base}?addr=${f.a}`, payload: Buffer.alloc(0), contentType: 'application/octet-stream', code: 'E_VALIDATION' },
    { name: 'no body', method: 'PUT', url: `${base}?addr=${f.a}`, code: 'E_VALIDATION' },
    { name: 'body over 64 MiB', method: 'PUT', url: `${base}?addr=${f.a}`, payload: Buffer.alloc(64 * MiB + 1, 1), contentType: 'application/octet-stream', code: 'E_VALIDATION', status: 413 },
    { name: 'body over 64 MiB as JSON', method: 'PUT', url: `${base}?addr=${f.a}`, payload: Buffer.alloc(64 * MiB + 1, 0x20), contentType: 'application/json', code: 'E_VALIDATION', status: 413 },
    { name: 'outside any mapping', method: 'PUT', url: `${base}?addr=${f.a - 64 * P}`, ...data, code: 'EFAULT' },
    { name: 'read-only page', method: 'PUT', url: `${base}?addr=${f.ro}`, ...data, code: 'EFAULT' },
    { name: 'from writable into read-only', method: 'PUT', url: `${base}?addr=${f.ro - 2 * P}`, payload: Buffer.alloc(3 * P, 0xee), contentType: 'application/octet-stream', code: 'EFAULT' },
    { name: 'off the end of a mapping', method: 'PUT', url: `${base}?addr=${f.shm + 2 * P - 3}`, ...data, code: 'EFAULT' },
    { name: 'prot none', method: 'PUT', url: `${base}?addr=${f.none}`, ...data, code: 'EFAULT' },
    { name: 'at 2^47', method: 'PUT', url: `${base}?addr=${hex(TWO_47)}`, ...data, code: 'EFAULT' },
    { name: 'crossing 2^47', method: 'PUT', url: `${base}?addr=${TWO_47 - 2}`, ...data, code: 'EFAULT' },
    ...idCases('PUT', `/v1/processes/:id/memory?addr=${f.a}`, 424242).map((c) => ({ ...c, ...data }))
  ])
})

t.test('GET /residency', async (t) => {
  const f = await fixture(t)
  const base = `/v1/processes/${f.pid}/residency`
  await runCases(t, f, [
    ...queryCases('GET', base, f.a, 16 * P),
    { name: 'unaligned addr', method: 'GET', url: `${base}?addr=${f.a + 1}&length=${P}`, code: 'EINVAL' },
    { name: 'unaligned length', method: 'GET', url: `${base}?addr=${f.a}&length=${P + 512}`, code: 'EINVAL' },
    { name: 'unaligned hex addr', method: 'GET', url: `${base}?addr=${hex(f.a + 0x800)}&length=${hex(P)}`, code: 'EINVAL' },
    { name: 'span beyond 2^48', method: 'GET', url: `${base}?addr=${hex(TWO_48 - P)}&length=${2 * P}`, code: 'EINVAL' },
    ...idCases('GET', `/v1/processes/:id/residency?addr=${f.a}&length=${P}`, 424242)
  ])
})

t.test('POST /v1/vms', async (t) => {
  const f = await fixture(t)
  const valid = { gpu: 1, pid: f.pid }
  await runCases(t, f, [
    ...bodyCases('POST', '/v1/vms', valid, { ints: ['gpu', 'pid'], lengths: [], aligned: [] }),
    { name: 'gpu 2^31', method: 'POST', url: '/v1/vms', body: { ...valid, gpu: 2 ** 31 }, code: 'E_VALIDATION' },
    { name: 'unknown gpu', method: 'POST', url: '/v1/vms', body: { ...valid, gpu: 9 }, code: 'E_NOT_FOUND' },
    { name: 'unknown pid', method: 'POST', url: '/v1/vms', body: { ...valid, pid: 424242 }, code: 'E_NOT_FOUND' }
  ])
})

t.test('DELETE /v1/vms/:vm and GET /v1/vms/:vm/ranges', async (t) => {
  const f = await fixture(t)
  await runCases(t, f, [
    ...idCases('DELETE', '/v1/vms/:id', 424242),
    ...idCases('GET', '/v1/vms/:id/ranges', 424242),
    { name: 'malformed JSON body on DELETE', method: 'DELETE', url: `/v1/vms/${f.vm}`, payload: '{"', contentType: 'application/json', code: 'E_VALIDATION' }
  ])
})

t.test('madvise', async (t) => {
  const f = await fixture(t)
  const url = `/v1/vms/${f.vm}/madvise`
  const valid = { addr: f.a, length: 2 * P, preferredLocation: 'device', atomic: 'device' }
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['addr', 'length'], lengths: ['length'], aligned: ['addr', 'length'], optional: ['preferredLocation', 'atomic'] }),
    { name: 'preferredLocation "gpu1"', method: 'POST', url, body: { ...valid, preferredLocation: 'gpu1' }, code: 'E_VALIDATION' },
    { name: 'preferredLocation { gpu: "1" }', method: 'POST', url, body: { ...valid, preferredLocation: { gpu: '1' } }, code: 'E_VALIDATION' },
    { name: 'preferredLocation { gpu: -1 }', method: 'POST', url, body: { ...valid, preferredLocation: { gpu: -1 } }, code: 'E_VALIDATION' },
    { name: 'preferredLocation with an unknown field', method: 'POST', url, body: { ...valid, preferredLocation: { gpu: 1, tile: 0 } }, code: 'E_VALIDATION' },
    { name: 'preferredLocation {}', method: 'POST', url, body: { ...valid, preferredLocation: {} }, code: 'E_VALIDATION' },
    { name: 'atomic unknown', method: 'POST', url, body: { ...valid, atomic: 'strong' }, code: 'E_VALIDATION' },
    { name: 'span beyond the mirror (2^47)', method: 'POST', url, body: { ...valid, addr: TWO_47 - P, length: 2 * P }, code: 'EINVAL' },
    { name: 'at 2^47', method: 'POST', url, body: { ...valid, addr: TWO_47 }, code: 'EINVAL' },
    { name: 'GPU of another owner group', method: 'POST', url, body: { ...valid, preferredLocation: { gpu: 2 } }, code: 'ENOLINK' },
    { name: 'unknown GPU', method: 'POST', url, body: { ...valid, preferredLocation: { gpu: 17 } }, code: 'E_NOT_FOUND' },
    ...idCases('POST', '/v1/vms/:id/madvise', 424242, valid)
  ])
})

t.test('GET /attributes and /snapshot', async (t) => {
  const f = await fixture(t)
  const cases: Case[] = []
  for (const what of ['attributes', 'snapshot']) {
    const base = `/v1/vms/${f.vm}/${what}`
    cases.push(
      ...queryCases('GET', base, f.a, 16 * P),
      { name: 'unaligned addr', method: 'GET', url: `${base}?addr=${f.a + 4}&length=${P}`, code: 'EINVAL' },
      { name: 'unaligned length', method: 'GET', url: `${base}?addr=${f.a}&length=${P - 1}`, code: 'EINVAL' },
      { name: 'span beyond the mirror (2^47)', method: 'GET', url: `${base}?addr=${hex(TWO_47 - P)}&length=${2 * P}`, code: 'EINVAL' },
      { name: 'at 2^47', method: 'GET', url: `${base}?addr=${hex(TWO_47)}&length=${P}`, code: 'EINVAL' },
      ...idCases('GET', `/v1/vms/:id/${what}?addr=${f.a}&length=${P}`, 424242)
    )
  }
  await runCases(t, f, cases)
})

t.test('prefetch', async (t) => {
  const f = await fixture(t)
  const url = `/v1/vms/${f.vm}/prefetch`
  const valid = { addr: f.a, length: 16 * P, location: 'device' }
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['addr', 'length'], lengths: ['length'], aligned: ['addr', 'length'] }),
    { name: 'location "gpu0"', method: 'POST', url, body: { ...valid, location: 'gpu0' }, code: 'E_VALIDATION' },
    { name: 'location { gpu: null }', method: 'POST', url, body: { ...valid, location: { gpu: null } }, code: 'E_VALIDATION' },
    { name: 'span beyond the mirror (2^47)', method: 'POST', url, body: { ...valid, addr: TWO_47 - P, length: 2 * P }, code: 'EINVAL' },
    { name: 'no VMA in the window', method: 'POST', url, body: { ...valid, addr: f.a - 64 * P, length: 32 * P }, code: 'ENOENT' },
    { name: 'GPU of another owner group', method: 'POST', url, body: { ...valid, location: { gpu: 3 } }, code: 'ENOLINK' },
    { name: 'unknown GPU', method: 'POST', url, body: { ...valid, location: { gpu: 17 } }, code: 'E_NOT_FOUND' },
    ...idCases('POST', '/v1/vms/:id/prefetch', 424242, valid)
  ])
})

t.test('faults and faults/batch', async (t) => {
  const f = await fixture(t)
  const url = `/v1/vms/${f.vm}/faults`
  const valid = { addr: f.a, access: 'write' }
  const burl = `/v1/vms/${f.vm}/faults/batch`
  await runCases(t, f, [
    ...bodyCases('POST', url, valid, { ints: ['addr'], lengths: [], aligned: [] }),
    { name: 'access unknown', method: 'POST', url, body: { ...valid, access: 'exec' }, code: 'E_VALIDATION' },
    { name: 'at 2^47', method: 'POST', url, body: { ...valid, addr: TWO_47 }, code: 'EINVAL' },
    { name: 'no VMA', method: 'POST', url, body: { ...valid, addr: f.a - 64 * P }, code: 'ENOENT' },
    { name: 'write to read-only', method: 'POST', url, body: { addr: f.ro, access: 'write' }, code: 'EPERM' },
    { name: 'atomic on read-only', method: 'POST', url, body: { addr: f.ro, access: 'atomic' }, code: 'EPERM' },
    { name: 'write to prot none', method: 'POST', url, body: { addr: f.none, access: 'write' }, code: 'EPERM' },
    // The fault handler migrates the range before get_pages finds the VMA unreadable, as xe's does.
    { name: 'read of prot none', method: 'POST', url, body: { addr: f.none, access: 'read' }, code: 'EFAULT', mayChange: 'migrated before hmm_range_fault fails' },
    ...idCases('POST', '/v1/vms/:id/faults', 424242, valid),
    ...bodyCases('POST', burl, { faults: [valid], concurrency: 1 }, { ints: ['concurrency'], lengths: ['concurrency'], aligned: [], optional: ['concurrency'] }),
    { name: 'no faults', method: 'POST', url: burl, body: { faults: [] }, code: 'E_VALIDATION' },
    { name: 'a malformed fault', method: 'POST', url: burl, body: { faults: [valid, { addr: -1, access: 'read' }] }, code: 'E_VALIDATION' },
    { name: 'a fault at 2^47', method: 'POST', url: burl, body: { faults: [valid, { addr: TWO_47, access: 'read' }] }, code: 'EINVAL' },
    ...idCases('POST', '/v1/vms/:id/faults/batch', 424242, { faults: [valid] })
  ])
})

t.test('exec', async (t) => {
  const f = await fixture(t)
  const url = `/v1/vms/${f.vm}/exec`
  const fill = { op: 'fill', addr: f.a, length: P, byte: 1 }
  const ops = (...o: unknown[]): Case['body'] => ({ ops: o })
  const e = (name: string, body: unknown, code: string): Case => ({ name, method: 'POST', url, body, code })
  await runCases(t, f, [
    ...bodyCases('POST', url, { ops: [fill] }, { ints: [], lengths: [], aligned: [] }),
    e('ops not an array', { ops: fill }, 'E_VALIDATION'),
    e('no ops', ops(), 'E_VALIDATION'),
    e('4097 ops', { ops: Array.from({ length: 4097 }, () => fill) }, 'E_VALIDATION'),
    e('unknown op', ops({ op: 'erase', addr: f.a, length: P }), 'E_VALIDATION'),
    e('op without a name', ops({ addr: f.a, length: P }), 'E_VALIDATION'),
    e('op with an unknown field', ops({ ...fill, stride: 2 }), 'E_VALIDATION'),
    e('fill byte 256', ops({ ...fill, byte: 256 }), 'E_VALIDATION'),
    e('fill length 0', ops({ ...fill, length: 0 }), 'E_VALIDATION'),
    e('fill length over 1 GiB', ops({ ...fill, length: 1024 * MiB + 1 }), 'E_VALIDATION'),
    e('fill addr negative', ops({ ...fill, addr: -4 }), 'E_VALIDATION'),
    e('fill addr 1.5', ops({ ...fill, addr: 1.5 }), 'E_VALIDATION'),
    e('fill addr 2^48', ops({ ...fill, addr: TWO_48 }), 'E_VALIDATION'),
    e('fill addr as a string', ops({ ...fill, addr: String(f.a) }), 'E_VALIDATION'),
    e('read length 0', ops({ op: 'read', addr: f.a, length: 0 }), 'E_VALIDATION'),
    e('read over 64 MiB', ops({ op: 'read', addr: f.a, length: 64 * MiB + 1 }), 'E_VALIDATION'),
    e('write without data', ops({ op: 'write', addr: f.a }), 'E_VALIDATION'),
    e('write empty data', ops({ op: 'write', addr: f.a, data: '' }), 'E_VALIDATION'),
    e('write data not base64', ops({ op: 'write', addr: f.a, data: 'not base64!' }), 'E_VALIDATION'),
    e('write data only padding', ops({ op: 'write', addr: f.a, data: '====' }), 'E_VALIDATION'),
    e('write data as bytes', ops({ op: 'write', addr: f.a, data: [1, 2, 3] }), 'E_VALIDATION'),
    e('write_u32 value 2^32', ops({ op: 'write_u32', addr: f.a, value: 2 ** 32 }), 'E_VALIDATION'),
    e('write_u32 value -1', ops({ op: 'write_u32', addr: f.a, value: -1 }), 'E_VALIDATION'),
    e('atomic_add without value', ops({ op: 'atomic_add', addr: f.a }), 'E_VALIDATION'),
    e('copy without dst', ops({ op: 'copy', src: f.a, length: P }), 'E_VALIDATION'),
    e('a bad op after good ones', ops(fill, fill, { op: 'read', addr: f.a, length: -1 }), 'E_VALIDATION'),
    e('a bad base64 op after good ones', ops(fill, { op: 'write', addr: f.a, data: '*' }), 'E_VALIDATION'),
    e('unaligned read_u32', ops({ op: 'read_u32', addr: f.a + 1 }), 'EINVAL'),
    e('unaligned write_u32', ops({ op: 'write_u32', addr: f.a + 2, value: 1 }), 'EINVAL'),
    e('unaligned atomic_add', ops({ op: 'atomic_add', addr: f.a + 3, value: 1 }), 'EINVAL'),
    e('op at 2^47', ops({ op: 'read_u32', addr: TWO_47 }), 'EINVAL'),
    e('fill crossing 2^47 after a good op', ops(fill, { op: 'fill', addr: TWO_47 - P, length: 2 * P, byte: 1 }), 'EINVAL'),
    e('copy into 2^47', ops({ op: 'copy', src: f.a, dst: TWO_47 - 8, length: 16 }), 'EINVAL'),
    e('first op has no VMA', ops({ op: 'fill', addr: f.a - 64 * P, length: P, byte: 1 }, fill), 'ENOENT'),
    e('first op writes read-only memory', ops({ op: 'write_u32', addr: f.ro, value: 1 }, fill), 'EPERM'),
    { ...e('first op reads prot none', ops({ op: 'read', addr: f.none, length: 4 }, fill), 'EFAULT'), mayChange: 'migrated before hmm_range_fault fails' },
    ...idCases('POST', '/v1/vms/:id/exec', 424242, { ops: [fill] })
  ])
})

t.test('GET /v1/gpus/:gpu', async (t) => {
  const f = await fixture(t)
  await runCases(t, f, [...idCases('GET', '/v1/gpus/:id', 4)])
})

t.test('wrong content types are malformed requests, never accepted', async (t) => {
  const f = await fixture(t)
  const base = await fingerprint(f.m, f.w)
  const targets: Array<[string, unknown]> = [
    [`/v1/processes/${f.pid}/mmap`, { length: P }],
    [`/v1/processes/${f.pid}/munmap`, { addr: f.a, length: P }],
    ['/v1/vms', { gpu: 0, pid: f.pid }],
    [`/v1/vms/${f.vm}/prefetch`, { addr: f.a, length: P, location: 'device' }],
    [`/v1/vms/${f.vm}/exec`, { ops: [{ op: 'fill', addr: f.a, length: P, byte: 1 }] }]
  ]
  for (const [url, body] of targets) {
    for (const ct of ['application/octet-stream', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      const r = await raw(f.m.app, { method: 'POST', url, payload: JSON.stringify(body), contentType: ct })
      t.ok(r.statusCode >= 400 && r.statusCode < 500, `${url} as ${ct}: 4xx (${r.statusCode})`)
      t.match(r.json(), { statusCode: r.statusCode, code: 'E_VALIDATION', error: String, message: String }, `${url} as ${ct}: E_VALIDATION`)
    }
  }
  t.same(await fingerprint(f.m, f.w), base, 'nothing changed')
  // The same bodies as JSON (charset parameter included) are accepted.
  const ok = await raw(f.m.app, { method: 'POST', url: `/v1/processes/${f.pid}/mmap`, payload: JSON.stringify({ length: P }), contentType: 'application/json; charset=utf-8' })
  t.equal(ok.statusCode, 201, ok.body)
})

t.test('query addresses: decimal and 0x hex name the same bytes', async (t) => {
  const f = await fixture(t)
  const app = f.m.app
  const want = bytes(16 * P, 42).subarray(3 * P + 5, 3 * P + 5 + 700)
  const at = f.a + 3 * P + 5
  for (const [addr, length] of [[String(at), '700'], [hex(at), hex(700)], [hex(at).toUpperCase().replace('0X', '0X'), '0x2BC'], ['0' + String(at), '0700']]) {
    const r = await raw(app, { method: 'GET', url: `/v1/processes/${f.pid}/memory?addr=${addr}&length=${length}` })
    t.equal(r.statusCode, 200, `${addr} ${length}: ${r.statusCode}`)
    t.same(r.rawPayload, want, `${addr} ${length}: the bytes`)
  }
  const r1 = (await raw(app, { method: 'GET', url: `/v1/processes/${f.pid}/residency?addr=${f.a}&length=${16 * P}` })).json()
  const r2 = (await raw(app, { method: 'GET', url: `/v1/processes/${f.pid}/residency?addr=${hex(f.a)}&length=${hex(16 * P)}` })).json()
  t.same(r2, r1, 'residency: same runs either way')
  t.equal(r1.runs.length > 0, true)
  const w = await raw(app, { method: 'PUT', url: `/v1/processes/${f.pid}/memory?addr=${hex(f.a + 7)}`, payload: Buffer.from('hex!'), contentType: 'application/octet-stream' })
  t.equal(w.statusCode, 204)
  t.equal((await raw(app, { method: 'GET', url: `/v1/processes/${f.pid}/memory?addr=${f.a + 7}&length=4` })).body, 'hex!')
  const s1 = (await raw(app, { method: 'GET', url: `/v1/vms/${f.vm}/snapshot?addr=${hex(f.a)}&length=${16 * P}` })).json()
  const s2 = (await raw(app, { method: 'GET', url: `/v1/vms/${f.vm}/snapshot?addr=${f.a}&length=${hex(16 * P)}` })).json()
  t.same(s1, s2, 'snapshot: same runs either way')
  const a1 = (await raw(app, { method: 'GET', url: `/v1/vms/${f.vm}/attributes?addr=${hex(f.a)}&length=${hex(16 * P)}` })).json()
  t.same(a1[1], { addr: f.a + 4 * P, length: 4 * P, preferredLocation: 'system', atomic: 'global' }, 'attributes by hex query')
})

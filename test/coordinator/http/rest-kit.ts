/**
 * Small helpers shared by the REST tests of the coordinator's front door:
 * raw requests, CPU memory through /memory, the error-shape assertion, and a
 * fingerprint of everything a rejected call must leave alone.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { RestMachine } from '../../helpers/rest.js'

export const P = 4096
export const KiB = 1024
export const MiB = 1024 * 1024
export const TWO_48 = 2 ** 48
export const TWO_47 = 2 ** 47

/** Every `code` the contract allows in an error body (DESIGN.md §2, shared/errors.ts). */
export const DOCUMENTED_CODES = [
  'E_VALIDATION', 'E_NOT_FOUND', 'EINVAL', 'ENOENT', 'EFAULT', 'EPERM', 'EACCES', 'EBUSY', 'ENOMEM',
  'ENODEV', 'ENOLINK', 'EIO', 'ETIMEDOUT', 'EOPNOTSUPP'
] as const

/**
 * DESIGN.md §2's status table, restated here as the oracle (not imported from
 * shared/errors.ts: the test checks the code against the contract). 413 for
 * oversized bodies is the one documented exception.
 */
const CONTRACT_STATUS: Readonly<Record<string, number>> = { E_VALIDATION: 400, EINVAL: 400, E_NOT_FOUND: 404, EBUSY: 409, ENODEV: 503 }

export function statusOf (code: string): number {
  return CONTRACT_STATUS[code] ?? 422
}

export const hex = (n: number): string => `0x${n.toString(16)}`

export interface RawRequest {
  method: string
  url: string
  payload?: string | Buffer
  contentType?: string
}

export async function raw (app: FastifyInstance, r: RawRequest): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: r.method as 'GET',
    url: r.url,
    ...(r.payload !== undefined ? { payload: r.payload } : {}),
    ...(r.contentType !== undefined ? { headers: { 'content-type': r.contentType } } : {})
  })
}

/** A JSON request (body serialised as given; undefined = no body at all). */
export async function req (app: FastifyInstance, method: string, url: string, body?: unknown): Promise<LightMyRequestResponse> {
  return await raw(app, { method, url, ...(body !== undefined ? { payload: JSON.stringify(body), contentType: 'application/json' } : {}) })
}

export async function putMem (app: FastifyInstance, pid: number, addr: number, data: Buffer, contentType = 'application/octet-stream'): Promise<LightMyRequestResponse> {
  return await raw(app, { method: 'PUT', url: `/v1/processes/${pid}/memory?addr=${addr}`, payload: data, contentType })
}

export async function getMem (app: FastifyInstance, pid: number, addr: number, length: number): Promise<LightMyRequestResponse> {
  return await raw(app, { method: 'GET', url: `/v1/processes/${pid}/memory?addr=${addr}&length=${length}` })
}

/** The bytes of a successful CPU read (fails the test with the body otherwise). */
export async function readBytes (t: Test, app: FastifyInstance, pid: number, addr: number, length: number): Promise<Buffer> {
  const r = await getMem(app, pid, addr, length)
  t.equal(r.statusCode, 200, `read ${hex(addr)}+${length}: ${r.statusCode === 200 ? 'ok' : r.body}`)
  return r.rawPayload
}

export async function newProcess (app: FastifyInstance): Promise<number> {
  const r = await req(app, 'POST', '/v1/processes', {})
  if (r.statusCode !== 201) throw new Error(`create process: ${r.statusCode} ${r.body}`)
  return r.json().pid
}

export async function mmap (app: FastifyInstance, pid: number, body: Record<string, unknown>): Promise<number> {
  const r = await req(app, 'POST', `/v1/processes/${pid}/mmap`, body)
  if (r.statusCode !== 201) throw new Error(`mmap ${JSON.stringify(body)}: ${r.statusCode} ${r.body}`)
  return r.json().addr
}

export async function newVm (app: FastifyInstance, gpu: number, pid: number): Promise<number> {
  const r = await req(app, 'POST', '/v1/vms', { gpu, pid })
  if (r.statusCode !== 201) throw new Error(`create vm: ${r.statusCode} ${r.body}`)
  return r.json().vm
}

/**
 * Asserts a documented error: the status the contract gives the code, and
 * the body `{ statusCode, code, error, message }`.
 */
export function isError (t: Test, res: LightMyRequestResponse, code: string, status = statusOf(code), what = ''): void {
  const label = `${what !== '' ? what + ': ' : ''}${code} ${status}`
  t.equal(res.statusCode, status, `${label} (got ${res.statusCode} ${res.body.slice(0, 200)})`)
  let body: Record<string, unknown> = {}
  try { body = res.json() } catch { /* asserted below */ }
  t.match(body, { statusCode: status, code, error: String, message: String }, `${label}: error body`)
}

/** Everything a rejected request must leave as it was, read through CoordinatorApi (the state behind the REST API). */
export interface Watch {
  pids: number[]
  vms: number[]
  /** [pid, addr, length] windows whose bytes and residency are compared */
  windows: Array<[number, number, number]>
}

async function settle<T> (f: () => T | Promise<T>): Promise<T | { error: string }> {
  try { return await f() } catch (err) { return { error: (err as { code?: string }).code ?? String(err) } }
}

export async function fingerprint (m: RestMachine, w: Watch): Promise<unknown> {
  const api = m.api
  const c = m.cluster.coordinator
  const out: Record<string, unknown> = { processes: c.processCount, vms: c.vms.size }
  // Placement first: reading memory would itself bring device pages back.
  for (const [pid, addr, length] of w.windows) out[`residency ${pid} ${hex(addr)}`] = await settle(() => api.residency(pid, addr, length))
  for (const vm of w.vms) {
    out[`ranges ${vm}`] = await settle(async () => await api.ranges(vm))
    for (const [, addr, length] of w.windows) out[`attributes ${vm} ${hex(addr)}`] = await settle(async () => await api.attributes(vm, addr, length))
  }
  for (const pid of w.pids) out[`process ${pid}`] = await settle(() => api.getProcess(pid))
  for (const [pid, addr, length] of w.windows) {
    out[`memory ${pid} ${hex(addr)}`] = await settle(async () => (await api.readMemory(pid, addr, length)).toString('base64'))
  }
  out.vram = await Promise.all([...c.gpus.entries.keys()].map(async (id) => (await c.gpuInfo(id))?.vram.used ?? null))
  return out
}

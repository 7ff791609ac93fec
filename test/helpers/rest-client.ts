/**
 * The same operations as CoordinatorApi, over HTTP against a running
 * coordinator: scenario tests run unchanged in one process (CoordinatorApi)
 * and across real processes (RestClient). Failures throw ApiError carrying
 * the reply's `code`, as SvmError does in process.
 */
import type { CoordinatorApi } from '../../services/coordinator/api.js'

export class ApiError extends Error {
  constructor (readonly statusCode: number, readonly code: string, message: string, readonly body: Record<string, unknown>) {
    super(message)
  }
}

type Promised<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never }
export type MachineApi = Promised<Pick<CoordinatorApi,
  'createProcess' | 'getProcess' | 'deleteProcess' | 'fork' | 'mmap' | 'munmap' | 'mremap' | 'mprotect' |
  'writeMemory' | 'readMemory' | 'residency' | 'topology' | 'owners' | 'gpu' | 'createVm' | 'deleteVm' |
  'madvise' | 'attributes' | 'prefetch' | 'fault' | 'faultBatch' | 'snapshot' | 'ranges' | 'exec'>>

/** Wraps the in-process API so every call is awaitable the same way. */
export function promised (api: CoordinatorApi): MachineApi {
  return new Proxy(api, {
    get (target, prop) {
      const v = (target as unknown as Record<string | symbol, unknown>)[prop]
      return typeof v === 'function' ? async (...args: unknown[]) => await (v as (...a: unknown[]) => unknown).apply(target, args) : v
    }
  }) as unknown as MachineApi
}

export class RestClient implements MachineApi {
  constructor (readonly url: string) {}

  private async req (method: string, path: string, body?: unknown, raw?: Uint8Array): Promise<unknown> {
    const headers: Record<string, string> = {}
    let payload: string | Uint8Array | undefined
    if (raw !== undefined) {
      headers['content-type'] = 'application/octet-stream'
      payload = raw
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(body)
    }
    const r = await fetch(this.url + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) })
    if (r.status >= 400) {
      const b = await r.json() as Record<string, unknown>
      throw new ApiError(r.status, String(b.code), String(b.message), b)
    }
    if (r.status === 204) return undefined
    if ((r.headers.get('content-type') ?? '').startsWith('application/octet-stream')) return Buffer.from(await r.arrayBuffer())
    return await r.json()
  }

  createProcess = async (): Promise<{ pid: number }> => await this.req('POST', '/v1/processes') as { pid: number }
  getProcess = async (pid: number): Promise<ReturnType<CoordinatorApi['getProcess']>> => await this.req('GET', `/v1/processes/${pid}`) as ReturnType<CoordinatorApi['getProcess']>
  deleteProcess = async (pid: number): Promise<void> => { await this.req('DELETE', `/v1/processes/${pid}`) }
  fork = async (pid: number): Promise<{ pid: number }> => await this.req('POST', `/v1/processes/${pid}/fork`) as { pid: number }
  mmap = async (pid: number, b: Parameters<CoordinatorApi['mmap']>[1]): Promise<{ addr: number }> => await this.req('POST', `/v1/processes/${pid}/mmap`, b) as { addr: number }
  munmap = async (pid: number, b: { addr: number, length: number }): Promise<void> => { await this.req('POST', `/v1/processes/${pid}/munmap`, b) }
  mremap = async (pid: number, b: Parameters<CoordinatorApi['mremap']>[1]): Promise<{ addr: number }> => await this.req('POST', `/v1/processes/${pid}/mremap`, b) as { addr: number }
  mprotect = async (pid: number, b: Parameters<CoordinatorApi['mprotect']>[1]): Promise<void> => { await this.req('POST', `/v1/processes/${pid}/mprotect`, b) }
  writeMemory = async (pid: number, addr: number, data: Uint8Array): Promise<void> => { await this.req('PUT', `/v1/processes/${pid}/memory?addr=0x${addr.toString(16)}`, undefined, data) }
  readMemory = async (pid: number, addr: number, length: number): Promise<Buffer> => await this.req('GET', `/v1/processes/${pid}/memory?addr=${addr}&length=${length}`) as Buffer
  residency = async (pid: number, addr: number, length: number): Promise<ReturnType<CoordinatorApi['residency']>> => await this.req('GET', `/v1/processes/${pid}/residency?addr=${addr}&length=${length}`) as ReturnType<CoordinatorApi['residency']>
  topology = async (): Promise<Awaited<ReturnType<CoordinatorApi['topology']>>> => await this.req('GET', '/v1/topology') as Awaited<ReturnType<CoordinatorApi['topology']>>
  owners = async (): Promise<ReturnType<CoordinatorApi['owners']>> => await this.req('GET', '/v1/owners') as ReturnType<CoordinatorApi['owners']>
  gpu = async (id: number): Promise<Awaited<ReturnType<CoordinatorApi['gpu']>>> => await this.req('GET', `/v1/gpus/${id}`) as Awaited<ReturnType<CoordinatorApi['gpu']>>
  createVm = async (b: { gpu: number, pid: number }): Promise<{ vm: number }> => await this.req('POST', '/v1/vms', b) as { vm: number }
  deleteVm = async (vm: number): Promise<void> => { await this.req('DELETE', `/v1/vms/${vm}`) }
  madvise = async (vm: number, b: Parameters<CoordinatorApi['madvise']>[1]): Promise<void> => { await this.req('POST', `/v1/vms/${vm}/madvise`, b) }
  attributes = async (vm: number, addr: number, length: number): Promise<Awaited<ReturnType<CoordinatorApi['attributes']>>> => await this.req('GET', `/v1/vms/${vm}/attributes?addr=${addr}&length=${length}`) as Awaited<ReturnType<CoordinatorApi['attributes']>>
  prefetch = async (vm: number, b: Parameters<CoordinatorApi['prefetch']>[1]): Promise<{ migratedBytes: number }> => await this.req('POST', `/v1/vms/${vm}/prefetch`, b) as { migratedBytes: number }
  fault = async (vm: number, b: Parameters<CoordinatorApi['fault']>[1]): Promise<Awaited<ReturnType<CoordinatorApi['fault']>>> => await this.req('POST', `/v1/vms/${vm}/faults`, b) as Awaited<ReturnType<CoordinatorApi['fault']>>
  faultBatch = async (vm: number, b: Parameters<CoordinatorApi['faultBatch']>[1]): Promise<Awaited<ReturnType<CoordinatorApi['faultBatch']>>> => await this.req('POST', `/v1/vms/${vm}/faults/batch`, b) as Awaited<ReturnType<CoordinatorApi['faultBatch']>>
  snapshot = async (vm: number, addr: number, length: number): Promise<ReturnType<CoordinatorApi['snapshot']>> => await this.req('GET', `/v1/vms/${vm}/snapshot?addr=${addr}&length=${length}`) as ReturnType<CoordinatorApi['snapshot']>
  ranges = async (vm: number): Promise<Awaited<ReturnType<CoordinatorApi['ranges']>>> => await this.req('GET', `/v1/vms/${vm}/ranges`) as Awaited<ReturnType<CoordinatorApi['ranges']>>
  exec = async (vm: number, b: Parameters<CoordinatorApi['exec']>[1]): Promise<Awaited<ReturnType<CoordinatorApi['exec']>>> => await this.req('POST', `/v1/vms/${vm}/exec`, b) as Awaited<ReturnType<CoordinatorApi['exec']>>
}

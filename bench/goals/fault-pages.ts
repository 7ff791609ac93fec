/**
 * Fresh pages for GPU-fault trials on the process cluster: one simulated
 * process and GPU VM per pool, holding `count` populated 4 KiB pages, each its
 * own VMA (a one-page hole after each, so VMAs cannot merge and every fault
 * makes a 4 KiB range). The pages are CPU-written first (system-resident).
 * Each trial takes pages nobody has faulted on, and runs them through
 * POST /v1/vms/:vm/faults/batch; every result is checked (ok, a 4 KiB range,
 * the expected location and migration) so a figure measures what it claims.
 */
import { Rest, forEachLimit } from '../rest-client.js'

const P = 4096
const PUT_BYTES = 32 * 1024 * 1024

export interface FaultSample { latencyUs: number[], elapsedUs: number, clientUs: number }

interface BatchResult {
  results: Array<{ ok: boolean, latencyUs: number, code?: string, message?: string, range?: { start: number, end: number }, location?: string, migrated?: boolean }>
  elapsedUs: number
}

export class PagePool {
  private next = 0

  private constructor (readonly rest: Rest, readonly pid: number, readonly vm: number, readonly addrs: number[], readonly preferred: 'system' | 'device') {}

  static async create (rest: Rest, count: number, preferred: 'system' | 'device'): Promise<PagePool> {
    const { pid } = await rest.call<{ pid: number }>('POST', '/v1/processes', {})
    const span = 2 * count * P
    const { addr: base } = await rest.call<{ addr: number }>('POST', `/v1/processes/${pid}/mmap`, { length: span })
    // One bulk CPU write populates every page; then every other page is unmapped.
    for (let off = 0; off < span; off += PUT_BYTES) {
      const len = Math.min(PUT_BYTES, span - off)
      const data = Buffer.alloc(len)
      for (let i = 0; i < len; i += P) data.writeUInt32LE((base + off + i) / P >>> 0, i)
      await rest.writeMemory(pid, base + off, data)
    }
    const holes = Array.from({ length: count }, (_, i) => base + (2 * i + 1) * P)
    await forEachLimit(holes, 8, async (a) => { await rest.call('POST', `/v1/processes/${pid}/munmap`, { addr: a, length: P }) })
    const addrs = Array.from({ length: count }, (_, i) => base + 2 * i * P)
    const { vm } = await rest.call<{ vm: number }>('POST', '/v1/vms', { gpu: 0, pid })
    if (preferred === 'system') await rest.call('POST', `/v1/vms/${vm}/madvise`, { addr: base, length: span, preferredLocation: 'system' })
    const res = await rest.call<{ runs: Array<{ location: string, length: number }> }>('GET', `/v1/processes/${pid}/residency?addr=${base}&length=${span}`)
    if (res.runs.length !== count || res.runs.some((r) => r.location !== 'system' || r.length !== P)) {
      throw new Error(`page pool: expected ${count} separate system-resident pages, residency says ${JSON.stringify(res.runs.slice(0, 4))}...`)
    }
    return new PagePool(rest, pid, vm, addrs, preferred)
  }

  get remaining (): number {
    return this.addrs.length - this.next
  }

  take (n: number): number[] {
    if (n > this.remaining) throw new Error(`page pool exhausted (${n} wanted, ${this.remaining} left)`)
    const out = this.addrs.slice(this.next, this.next + n)
    this.next += n
    return out
  }

  /** Faults on `n` fresh pages with `concurrency` in flight (write access). */
  async faults (n: number, concurrency: number): Promise<FaultSample> {
    const addrs = this.take(n)
    const t0 = performance.now()
    const r = await this.rest.call<BatchResult>('POST', `/v1/vms/${this.vm}/faults/batch`, {
      faults: addrs.map((addr) => ({ addr, access: 'write' })),
      concurrency
    })
    const clientUs = (performance.now() - t0) * 1000
    const wantLocation = this.preferred === 'system' ? 'system' : 'gpu0'
    const wantMigrated = this.preferred === 'device'
    r.results.forEach((x, i) => {
      const a = addrs[i] as number
      if (!x.ok) throw new Error(`fault at 0x${a.toString(16)} failed: ${x.code ?? ''} ${x.message ?? ''}`)
      if (x.range?.start !== a || x.range.end !== a + P) throw new Error(`fault at 0x${a.toString(16)} made range ${JSON.stringify(x.range)}, not one 4 KiB page`)
      if (x.location !== wantLocation || x.migrated !== wantMigrated) {
        throw new Error(`fault at 0x${a.toString(16)}: location ${x.location ?? '?'} migrated ${String(x.migrated)}, expected ${wantLocation} migrated ${String(wantMigrated)}`)
      }
    })
    return { latencyUs: r.results.map((x) => x.latencyUs), elapsedUs: r.elapsedUs, clientUs }
  }
}

/**
 * Model-based test of the whole machine (coordinator and GPU cores over the
 * seeded in-memory transport): several streams run random CPU and GPU
 * operations concurrently, each on its own region, while VRAM is small
 * enough to force eviction. Every read, CPU or GPU, must return what a
 * simple byte oracle says; every refused access the oracle's error. The
 * transport seed and the workload seed come from the fast-check seed, so a
 * failure replays (FC_SEED).
 */
import t from 'tap'
import fc from 'fast-check'
import { machine } from '../helpers/cluster.js'
import type { CoordinatorApi } from '../../services/coordinator/api.js'

const P = 4096
const REGION = 32 * P

type Op =
  | { k: 'cpuWrite', off: number, len: number, v: number }
  | { k: 'cpuRead', off: number, len: number }
  | { k: 'gpuWrite', off: number, len: number, v: number }
  | { k: 'gpuRead', off: number, len: number }
  | { k: 'atomic', word: number, add: number }
  | { k: 'prefetch', to: 'device' | 'system' }
  | { k: 'advise', pref: 'device' | 'system' }
  | { k: 'protect', prot: 'r' | 'rw' }
  | { k: 'remap', page: number, n: number }
  | { k: 'race', off: number, len: number, v: number, gpuWrites: boolean }

const span = fc.tuple(fc.nat(REGION - 1), fc.integer({ min: 1, max: 3 * P })).map(([off, len]) => ({ off, len: Math.min(len, REGION - off) }))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(span, fc.integer({ min: 1, max: 255 })).map(([s, v]) => ({ k: 'cpuWrite' as const, ...s, v })) },
  { weight: 3, arbitrary: span.map((s) => ({ k: 'cpuRead' as const, ...s })) },
  { weight: 4, arbitrary: fc.tuple(span, fc.integer({ min: 1, max: 255 })).map(([s, v]) => ({ k: 'gpuWrite' as const, ...s, v })) },
  { weight: 4, arbitrary: span.map((s) => ({ k: 'gpuRead' as const, ...s })) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(REGION / 4 - 1), fc.integer({ min: 1, max: 1000 })).map(([word, add]) => ({ k: 'atomic' as const, word, add })) },
  { weight: 1, arbitrary: fc.constantFrom('device' as const, 'system' as const).map((to) => ({ k: 'prefetch' as const, to })) },
  { weight: 1, arbitrary: fc.constantFrom('device' as const, 'system' as const).map((pref) => ({ k: 'advise' as const, pref })) },
  { weight: 1, arbitrary: fc.constantFrom('r' as const, 'rw' as const).map((prot) => ({ k: 'protect' as const, prot })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(REGION / P - 1), fc.integer({ min: 1, max: 4 })).map(([page, n]) => ({ k: 'remap' as const, page, n: Math.min(n, REGION / P - page) })) },
  { weight: 4, arbitrary: fc.tuple(span, fc.integer({ min: 1, max: 255 }), fc.boolean()).map(([s, v, gpuWrites]) => ({ k: 'race' as const, ...s, v, gpuWrites })) }
)

async function code (p: Promise<unknown>): Promise<string | null> {
  try { await p; return null } catch (err) { return (err as { code?: string }).code ?? String(err) }
}

async function stream (api: CoordinatorApi, pid: number, vm: number, base: number, ops: Op[]): Promise<void> {
  const oracle = Buffer.alloc(REGION)
  let writable = true
  const fail = (what: string): never => { throw new Error(`${what} (region 0x${base.toString(16)})`) }
  for (const op of ops) {
    switch (op.k) {
      case 'cpuWrite': {
        const c = await code(api.writeMemory(pid, base + op.off, Buffer.alloc(op.len, op.v)))
        if (writable) { if (c !== null) fail(`cpu write failed: ${c}`); oracle.fill(op.v, op.off, op.off + op.len) } else if (c !== 'EFAULT') fail(`cpu write to read-only gave ${c}`)
        break
      }
      case 'cpuRead': {
        const got = await api.readMemory(pid, base + op.off, op.len)
        if (!got.equals(oracle.subarray(op.off, op.off + op.len))) fail(`cpu read mismatch at +${op.off} len ${op.len}`)
        break
      }
      case 'gpuWrite': {
        const c = await code(api.exec(vm, { ops: [{ op: 'fill', addr: base + op.off, length: op.len, byte: op.v }] }))
        if (writable) { if (c !== null) fail(`gpu write failed: ${c}`); oracle.fill(op.v, op.off, op.off + op.len) } else if (c !== 'EPERM') fail(`gpu write to read-only gave ${c}`)
        break
      }
      case 'gpuRead': {
        const r = await api.exec(vm, { ops: [{ op: 'read', addr: base + op.off, length: op.len }] })
        const got = Buffer.from(r.results[0]?.data as string, 'base64')
        if (!got.equals(oracle.subarray(op.off, op.off + op.len))) fail(`gpu read mismatch at +${op.off} len ${op.len}`)
        break
      }
      case 'atomic': {
        const c = await code(api.exec(vm, { ops: [{ op: 'atomic_add', addr: base + op.word * 4, value: op.add }] }).then((r) => {
          const old = r.results[0]?.old as number
          if (old !== oracle.readUInt32LE(op.word * 4)) fail(`atomic old ${old} != ${oracle.readUInt32LE(op.word * 4)}`)
          oracle.writeUInt32LE((old + op.add) >>> 0, op.word * 4)
        }))
        if (writable && c !== null) fail(`atomic failed: ${c}`)
        if (!writable && c !== 'EPERM') fail(`atomic on read-only gave ${c}`)
        break
      }
      case 'prefetch': {
        const c = await code(api.prefetch(vm, { addr: base, length: REGION, location: op.to }))
        if (c !== null && c !== 'EBUSY' && c !== 'ENOMEM') fail(`prefetch failed: ${c}`)
        break
      }
      case 'advise':
        await api.madvise(vm, { addr: base, length: REGION, preferredLocation: op.pref })
        break
      case 'protect':
        await api.mprotect(pid, { addr: base, length: REGION, prot: op.prot })
        writable = op.prot === 'rw'
        break
      case 'race': {
        // A write and a read of the same bytes at once, by CPU and GPU: the read may see
        // either value per byte, but afterwards both sides must see the new one.
        if (!writable) break
        const old = Buffer.from(oracle.subarray(op.off, op.off + op.len))
        const write = op.gpuWrites
          ? api.exec(vm, { ops: [{ op: 'fill', addr: base + op.off, length: op.len, byte: op.v }] })
          : api.writeMemory(pid, base + op.off, Buffer.alloc(op.len, op.v))
        const read = op.gpuWrites
          ? api.readMemory(pid, base + op.off, op.len)
          : api.exec(vm, { ops: [{ op: 'read', addr: base + op.off, length: op.len }] }).then((r) => Buffer.from(r.results[0]?.data as string, 'base64'))
        const [, seen] = await Promise.all([write, read])
        for (let i = 0; i < op.len; i++) if (seen[i] !== old[i] && seen[i] !== op.v) fail(`racing read saw ${seen[i]} at +${op.off + i}, neither old ${old[i]} nor new ${op.v}`)
        oracle.fill(op.v, op.off, op.off + op.len)
        const g = await api.exec(vm, { ops: [{ op: 'read', addr: base + op.off, length: op.len }] })
        if (!Buffer.from(g.results[0]?.data as string, 'base64').equals(oracle.subarray(op.off, op.off + op.len))) fail(`stale GPU read after a race at +${op.off}`)
        if (!(await api.readMemory(pid, base + op.off, op.len)).equals(oracle.subarray(op.off, op.off + op.len))) fail(`stale CPU read after a race at +${op.off}`)
        break
      }
      case 'remap':
        // Replace pages with fresh memory (MAP_FIXED): they read as zeros.
        await api.mmap(pid, { length: op.n * P, addr: base + op.page * P, prot: writable ? 'rw' : 'r' })
        oracle.fill(0, op.page * P, (op.page + op.n) * P)
        break
    }
  }
  await api.mprotect(pid, { addr: base, length: REGION, prot: 'rw' })
  const end = await api.readMemory(pid, base, REGION)
  if (!end.equals(oracle)) fail('final sweep mismatch')
}

t.test('concurrent random CPU/GPU workloads match the byte oracle', async (t) => {
  const seed = Number(process.env.FC_SEED ?? 424242)
  await t.resolves(fc.assert(fc.asyncProperty(
    fc.integer({ min: 1, max: 1e9 }),
    fc.array(fc.array(opArb, { minLength: 5, maxLength: 25 }), { minLength: 2, maxLength: 4 }),
    async (transportSeed, streams) => {
      const m = await machine({ gpus: 1, vram: 2 * 1024 * 1024, seed: transportSeed, maxDelay: 4 })
      try {
        const api = m.api
        const { pid } = api.createProcess()
        const { vm } = await api.createVm({ gpu: 0, pid })
        const { vm: vm2 } = await api.createVm({ gpu: 0, pid })
        const bases: number[] = []
        for (let i = 0; i < streams.length; i++) bases.push((await api.mmap(pid, { length: REGION })).addr)
        await Promise.all(streams.map(async (ops, i) => { await stream(api, pid, i % 2 === 0 ? vm : vm2, bases[i] as number, ops) }))
        const info = await api.gpu(0)
        if (info.vram.used > info.vram.total) throw new Error('VRAM overcommitted')
        await api.deleteProcess(pid)
        const after = await api.gpu(0)
        if (after.vram.used !== 0) throw new Error(`VRAM leaked after exit: ${after.vram.used}`)
        if (m.cluster.coordinator.phys.system.usedFrames !== 0) throw new Error(`frames leaked after exit: ${m.cluster.coordinator.phys.system.usedFrames}`)
      } finally {
        await m.close()
      }
    }
  ), { seed, numRuns: Number(process.env.FC_RUNS ?? 60), endOnFailure: true }), `seed ${seed}`)
})

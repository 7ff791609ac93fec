/**
 * The GPU service's behaviour as a user sees it, each scenario run in one
 * process (in-memory transport, seeded delivery) and across real processes
 * (WebSocket and HTTP): data integrity through migrations, all-or-nothing
 * collection, partial munmap, mremap, fork, VRAM overcommit, atomics, and no
 * access through a stale translation.
 */
import t from 'tap'
import { bothWays } from '../helpers/both-ways.js'
import { bytes } from '../helpers/mm-harness.js'
import type { MachineApi } from '../helpers/rest-client.js'

const P = 4096
const K64 = 64 * 1024
const M2 = 2 * 1024 * 1024

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const unb64 = (s: unknown): Buffer => Buffer.from(s as string, 'base64')

async function codeOf (p: Promise<unknown>): Promise<{ code: string, opIndex?: unknown }> {
  try {
    await p
  } catch (err) {
    const e = err as { code: string, details?: { opIndex?: unknown }, body?: { opIndex?: unknown } }
    return { code: e.code, opIndex: e.details?.opIndex ?? e.body?.opIndex }
  }
  return { code: 'none' }
}

async function setup (api: MachineApi, length: number): Promise<{ pid: number, addr: number, vm: number }> {
  const { pid } = await api.createProcess()
  const { addr } = await api.mmap(pid, { length })
  const { vm } = await api.createVm({ gpu: 0, pid })
  return { pid, addr, vm }
}

bothWays(t, 'GPU reads CPU data, first touch is zeros, CPU sees GPU writes', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, M2)
  const data = bytes(3 * P, 1)
  await api.writeMemory(pid, addr, data)
  const r = await api.exec(vm, { ops: [{ op: 'read', addr: addr + 5, length: 3 * P - 5 }] })
  t.same(unb64(r.results[0]?.data), data.subarray(5), 'GPU read of CPU-written data')
  const { addr: fresh } = await api.mmap(pid, { length: 16 * P })
  const z = await api.exec(vm, { ops: [{ op: 'read', addr: fresh, length: 16 * P }, { op: 'write', addr: fresh + 100, data: b64(Buffer.from('from the gpu')) }] })
  t.same(unb64(z.results[0]?.data), Buffer.alloc(16 * P), 'never-touched memory reads as zeros')
  t.same(await api.readMemory(pid, fresh + 100, 12), Buffer.from('from the gpu'), 'CPU sees the GPU write')
})

bothWays(t, 'migration round trips keep bytes and VRAM returns to baseline', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, M2)
  const base = (await api.gpu(0)).vram.used
  let want = bytes(M2, 2)
  await api.writeMemory(pid, addr, want)
  for (let i = 0; i < 10; i++) {
    const r = await api.exec(vm, { ops: [{ op: 'fill', addr: addr + i * P, length: P, byte: i + 1 }, { op: 'read_u32', addr: addr + M2 - 4 }] })
    t.equal(r.results[1]?.value, want.readUInt32LE(M2 - 4), `round ${i}: GPU sees the CPU's bytes`)
    want = Buffer.from(want)
    want.fill(i + 1, i * P, (i + 1) * P)
    t.same((await api.residency(pid, addr, M2)).runs, [{ addr, length: M2, location: 'gpu0' }], `round ${i}: in VRAM`)
    t.ok(Buffer.compare(await api.readMemory(pid, addr, M2), want) === 0, `round ${i}: CPU reads it back whole`)
    t.same((await api.residency(pid, addr, M2)).runs, [{ addr, length: M2, location: 'system' }], `round ${i}: back in system memory`)
  }
  const info = await api.gpu(0)
  t.ok(info.counters.migrations.systemToDevice >= 10 && info.counters.migrations.deviceToSystem >= 10)
  await api.exec(vm, { ops: [{ op: 'read', addr, length: 8 }] })
  t.ok((await api.gpu(0)).vram.used > base, 'in VRAM again')
  await api.munmap(pid, { addr, length: M2 })
  t.equal((await api.gpu(0)).vram.used, base, 'munmap frees the VRAM before it returns')
})

bothWays(t, 'all-or-nothing: a page that cannot be collected fails the migration and nothing moves', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, M2)
  const data = bytes(M2, 3)
  await api.writeMemory(pid, addr, data)
  // A second VM of the process puts 64 KiB of the window in VRAM first.
  const { vm: other } = await api.createVm({ gpu: 0, pid })
  await api.madvise(other, { addr, length: K64, atomic: 'global' })
  t.same(await api.prefetch(other, { addr, length: K64, location: 'device' }), { migratedBytes: K64 })
  const used = (await api.gpu(0)).vram.used
  const before = await api.residency(pid, addr, M2)
  t.same(before.runs.map((r) => [r.length, r.location]), [[K64, 'gpu0'], [M2 - K64, 'system']])
  const failed = await codeOf(api.prefetch(vm, { addr, length: M2, location: 'device' }))
  t.equal(failed.code, 'EBUSY', 'the 2 MiB collection cannot take pages already in VRAM')
  t.same(await api.residency(pid, addr, M2), before, 'nothing moved')
  t.equal((await api.gpu(0)).vram.used, used, 'no VRAM leaked')
  // An ordinary fault falls back to mapping the pages where they are, as xe does.
  const r = await api.exec(vm, { ops: [{ op: 'checksum', addr, length: M2 }, { op: 'read', addr: addr + M2 - 16, length: 16 }] })
  t.same(unb64(r.results[1]?.data), data.subarray(M2 - 16))
  t.same(await api.readMemory(pid, addr, M2), data)
})

for (const offset of [0, 512 * 1024, 1024 * 1024]) {
  bothWays(t, `partial munmap of a VRAM 2 MiB range at +${offset / 1024}K`, {}, async (t, api) => {
    const { pid, addr, vm } = await setup(api, M2)
    const data = bytes(M2, 4 + offset)
    await api.writeMemory(pid, addr, data)
    await api.exec(vm, { ops: [{ op: 'read', addr, length: 8 }] })
    t.same((await api.ranges(vm)).map((r) => [r.start, r.end, r.location]), [[addr, addr + M2, 'gpu0']])
    const hole = 256 * 1024
    await api.munmap(pid, { addr: addr + offset, length: hole })
    const [r] = await api.ranges(vm)
    t.same([r?.flags.unmapped, r?.flags.partialUnmap, r?.bound], [true, true, false], 'the whole range is unmapped, never split')
    const left = (await api.residency(pid, addr, M2)).runs
    t.ok(left.every((x) => x.location === 'gpu0'), 'the rest stays in VRAM until accessed')
    t.equal(left.reduce((n, x) => n + x.length, 0), M2 - hole)
    const keep = offset === 0 ? addr + hole : addr
    const inHole = addr + offset + P
    const g = await api.exec(vm, { ops: [{ op: 'read', addr: keep, length: 64 }] })
    t.same(unb64(g.results[0]?.data), data.subarray(keep - addr, keep - addr + 64), 'GPU reads the remainder correctly')
    const ranges = await api.ranges(vm)
    t.equal(ranges.length, 1, 'the garbage collector removed the unmapped range')
    t.ok((ranges[0]?.end ?? 0) - (ranges[0]?.start ?? 0) < M2, 'and the new range is smaller')
    const miss = await codeOf(api.exec(vm, { ops: [{ op: 'read', addr: inHole, length: 4 }] }))
    t.same(miss, { code: 'ENOENT', opIndex: 0 }, 'access inside the hole fails')
    for (const x of left) {
      t.same(await api.readMemory(pid, x.addr, x.length), data.subarray(x.addr - addr, x.addr - addr + x.length), 'remainder correct in system memory')
    }
    t.equal((await api.gpu(0)).vram.used, 0, 'every device page freed')
  })
}

bothWays(t, 'mremap of migrated data, with and without dontUnmap', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, M2)
  const data = bytes(M2, 5)
  await api.writeMemory(pid, addr, data)
  await api.exec(vm, { ops: [{ op: 'read', addr, length: 8 }] })
  const { addr: moved } = await api.mremap(pid, { addr, oldLength: M2, newLength: M2, newAddr: addr + 16 * M2 })
  t.same((await api.residency(pid, moved, M2)).runs, [{ addr: moved, length: M2, location: 'gpu0' }], 'device pages moved with the mapping')
  const r = await api.exec(vm, { ops: [{ op: 'checksum', addr: moved, length: M2 }, { op: 'read', addr: moved + 1000, length: 32 }] })
  t.same(unb64(r.results[1]?.data), data.subarray(1000, 1032))
  t.equal((await codeOf(api.exec(vm, { ops: [{ op: 'read', addr, length: 4 }] }))).code, 'ENOENT', 'old address is gone for the GPU')
  t.equal((await codeOf(api.readMemory(pid, addr, 4))).code, 'EFAULT', 'and for the CPU')
  t.same(await api.readMemory(pid, moved, M2), data)
  // dontUnmap: the old span stays mapped and reads as fresh memory.
  await api.exec(vm, { ops: [{ op: 'read', addr: moved, length: 8 }] })
  const { addr: again } = await api.mremap(pid, { addr: moved, oldLength: M2, newLength: M2, newAddr: moved + 8 * M2, dontUnmap: true })
  const z = await api.exec(vm, { ops: [{ op: 'read', addr: moved, length: 64 }, { op: 'read', addr: again, length: 64 }] })
  t.same(unb64(z.results[0]?.data), Buffer.alloc(64), 'old span: zeros')
  t.same(unb64(z.results[1]?.data), data.subarray(0, 64), 'new span: the data')
  t.same(await api.readMemory(pid, again, M2), data)
})

bothWays(t, 'fork after migration: parent and child are isolated', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, M2)
  const data = bytes(M2, 6)
  await api.writeMemory(pid, addr, data)
  await api.exec(vm, { ops: [{ op: 'read', addr, length: 8 }] })
  t.equal((await api.ranges(vm))[0]?.bound, true)
  const { pid: child } = await api.fork(pid)
  t.equal((await api.ranges(vm))[0]?.bound, false, 'fork write-protects the parent: its GPU mapping was invalidated')
  await api.exec(vm, { ops: [{ op: 'write_u32', addr, value: 0x11223344 }] })
  t.equal((await api.readMemory(pid, addr, 4)).readUInt32LE(0), 0x11223344, 'parent sees its GPU write')
  t.same(await api.readMemory(child, addr, 4), data.subarray(0, 4), 'child keeps the data of the fork')
  await api.writeMemory(child, addr + P, Buffer.from('child'))
  const r = await api.exec(vm, { ops: [{ op: 'read', addr: addr + P, length: 5 }] })
  t.same(unb64(r.results[0]?.data), data.subarray(P, P + 5), 'the child\'s write is invisible to the parent\'s GPU')
  t.same(await api.readMemory(child, addr + 2 * P, M2 - 2 * P), data.subarray(2 * P))
})

bothWays(t, 'VRAM overcommit: 9/8 of capacity written through the GPU', { vram: 16 * 1024 * 1024 }, async (t, api) => {
  const vram = 16 * 1024 * 1024
  const total = vram / 8 * 9
  const { pid, addr, vm } = await setup(api, total)
  let peak = 0
  for (let o = 0; o < total; o += M2) {
    const r = await api.exec(vm, { ops: [{ op: 'fill', addr: addr + o, length: M2, byte: (o / M2) + 1 }] })
    t.same(r.results, [{}])
    peak = Math.max(peak, (await api.gpu(0)).vram.used)
  }
  t.ok(peak <= vram, `VRAM used never exceeded capacity (peak ${peak})`)
  t.ok((await api.gpu(0)).counters.evictions > 0, 'least recently used allocations were evicted')
  for (let o = 0; o < total; o += M2) {
    t.same(await api.readMemory(pid, addr + o, M2), Buffer.alloc(M2, (o / M2) + 1), `chunk ${o / M2} correct`)
  }
})

bothWays(t, 'atomics migrate system pages; atomic mode "cpu" refuses them', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, K64)
  await api.madvise(vm, { addr, length: K64, preferredLocation: 'system' })
  const seed = Buffer.alloc(8)
  seed.writeUInt32LE(41, 4)
  await api.writeMemory(pid, addr, seed)
  const plain = await api.exec(vm, { ops: [{ op: 'read_u32', addr: addr + 4 }] })
  t.equal(plain.results[0]?.value, 41)
  t.equal((await api.residency(pid, addr, K64)).runs[0]?.location, 'system', 'a plain access stays in system memory')
  const r = await api.exec(vm, { ops: [{ op: 'atomic_add', addr: addr + 4, value: 1 }, { op: 'atomic_add', addr: addr + 4, value: 1 }] })
  t.same(r.results, [{ old: 41 }, { old: 42 }])
  t.equal((await api.residency(pid, addr, K64)).runs[0]?.location, 'gpu0', 'the atomic needed device memory')
  t.equal((await api.readMemory(pid, addr + 4, 4)).readUInt32LE(0), 43)
  await api.madvise(vm, { addr, length: K64, atomic: 'cpu' })
  t.same(await codeOf(api.exec(vm, { ops: [{ op: 'read_u32', addr }, { op: 'atomic_add', addr, value: 1 }] })), { code: 'EACCES', opIndex: 1 })
  t.same((await api.attributes(vm, addr, K64)), [{ addr, length: K64, preferredLocation: 'system', atomic: 'cpu' }])
})

bothWays(t, 'no GPU access through a stale translation after munmap or mprotect', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, K64)
  await api.writeMemory(pid, addr, Buffer.from('first'))
  const a = await api.exec(vm, { ops: [{ op: 'read', addr, length: 5 }] })
  t.same(unb64(a.results[0]?.data), Buffer.from('first'))
  await api.munmap(pid, { addr, length: K64 })
  t.equal((await codeOf(api.exec(vm, { ops: [{ op: 'read', addr, length: 5 }] }))).code, 'ENOENT', 'no read through the old mapping')
  await api.mmap(pid, { length: K64, addr })
  await api.writeMemory(pid, addr, Buffer.from('second'))
  const b = await api.exec(vm, { ops: [{ op: 'read', addr, length: 6 }] })
  t.same(unb64(b.results[0]?.data), Buffer.from('second'), 'new memory at the same address, not stale VRAM')
  await api.mprotect(pid, { addr, length: K64, prot: 'r' })
  t.equal((await codeOf(api.exec(vm, { ops: [{ op: 'write', addr, data: b64(Buffer.from('x')) }] }))).code, 'EPERM', 'no write through a stale writable PTE')
  t.same(await api.readMemory(pid, addr, 6), Buffer.from('second'))
  await api.mprotect(pid, { addr, length: K64, prot: 'none' })
  t.equal((await codeOf(api.exec(vm, { ops: [{ op: 'read', addr, length: 1 }] }))).code, 'EFAULT', 'no read of PROT_NONE memory')
})

bothWays(t, 'bad exec input gets the documented codes', {}, async (t, api) => {
  const { addr, vm } = await setup(api, K64)
  t.same(await codeOf(api.exec(vm, { ops: [{ op: 'read_u32', addr: addr + 2 }] })), { code: 'EINVAL', opIndex: 0 })
  t.same(await codeOf(api.exec(vm, { ops: [{ op: 'write_u32', addr: addr + 4, value: 1 }, { op: 'atomic_add', addr: addr + 1, value: 1 }] })), { code: 'EINVAL', opIndex: 1 })
  t.same(await codeOf(api.exec(vm, { ops: [{ op: 'read', addr: addr + K64 - P, length: 2 * P }] })), { code: 'ENOENT', opIndex: 0 }, 'a read running past the VMA')
  t.equal((await codeOf(api.exec(vm + 100, { ops: [{ op: 'read', addr, length: 1 }] }))).code, 'E_NOT_FOUND')
  t.equal((await codeOf(api.createVm({ gpu: 9, pid: 1 }))).code, 'E_NOT_FOUND')
  t.equal((await codeOf(api.fault(vm, { addr: 2 ** 47, access: 'read' }))).code, 'EINVAL')
})

bothWays(t, 'madvise: a changed attribute invalidates the GPU mapping, an unchanged one does not', {}, async (t, api) => {
  const { pid, addr, vm } = await setup(api, K64)
  await api.writeMemory(pid, addr, Buffer.from('data'))
  await api.madvise(vm, { addr, length: K64, preferredLocation: 'system' })
  await api.exec(vm, { ops: [{ op: 'read', addr, length: 4 }] })
  t.equal((await api.ranges(vm))[0]?.bound, true)
  await api.madvise(vm, { addr, length: K64, preferredLocation: 'system' })
  t.equal((await api.ranges(vm))[0]?.bound, true, 're-applying the same preferred location leaves the binding')
  await api.madvise(vm, { addr, length: K64, atomic: 'undefined' })
  t.equal((await api.ranges(vm))[0]?.bound, true, 'nor does re-applying the default atomic mode')
  const faults = (await api.gpu(0)).counters.faults
  await api.exec(vm, { ops: [{ op: 'read', addr, length: 4 }] })
  t.equal((await api.gpu(0)).counters.faults, faults, 'the next access does not fault')
  await api.madvise(vm, { addr, length: K64, preferredLocation: 'device' })
  t.equal((await api.ranges(vm))[0]?.bound, false, 'a change zaps the PTEs')
  const r = await api.exec(vm, { ops: [{ op: 'read', addr, length: 4 }] })
  t.equal(r.stats.faults, 1, 'and the next access faults to re-place the range')
  t.equal((await api.residency(pid, addr, K64)).runs[0]?.location, 'gpu0', 'now in VRAM, as preferred')
})

/**
 * GPU VMs over REST (DESIGN.md §2 "GPU VMs"): create/delete, madvise and
 * attributes, prefetch, injected faults (single and batch), snapshot,
 * ranges and exec, on a 4-GPU machine with two owner groups ({0,1}, {2,3}).
 */
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { bytes } from '../../helpers/mm-harness.js'
import { restMachine, type RestMachine } from '../../helpers/rest.js'
import { KiB, MiB, P, TWO_47, fingerprint, hex, isError, mmap, newProcess, newVm, putMem, raw, readBytes, req } from './rest-kit.js'

interface Run { addr: number, length: number, location: string }

async function fourGpus (t: Test): Promise<RestMachine> {
  const m = await restMachine({ gpus: 4, vram: 16 * MiB })
  t.teardown(m.close)
  return m
}

async function residency (m: RestMachine, pid: number, addr: number, length: number): Promise<Run[]> {
  return (await req(m.app, 'GET', `/v1/processes/${pid}/residency?addr=${addr}&length=${length}`)).json().runs
}

t.test('POST /v1/vms binds a VM to a process and a GPU; DELETE unbinds it but leaves the pages', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  const data = bytes(16 * P, 4)
  await putMem(app, pid, a, data)

  const r = await req(app, 'POST', '/v1/vms', { gpu: 0, pid })
  t.equal(r.statusCode, 201, r.body)
  t.same(Object.keys(r.json()), ['vm'])
  const vm = r.json().vm as number
  const vm2 = await newVm(app, 2, pid)
  t.not(vm, vm2, 'distinct VM ids')
  t.same((await req(app, 'GET', `/v1/vms/${vm}/ranges`)).json(), [], 'a new VM has no ranges')
  t.same((await req(app, 'GET', `/v1/vms/${vm}/attributes?addr=${a}&length=${16 * P}`)).json(),
    [{ addr: a, length: 16 * P, preferredLocation: 'device', atomic: 'undefined' }], 'defaults: device, undefined')

  const pf = await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 16 * P, location: 'device' })
  t.equal(pf.statusCode, 200, pf.body)
  const d = await req(app, 'DELETE', `/v1/vms/${vm}`)
  t.equal(d.statusCode, 204, d.body)
  isError(t, await req(app, 'GET', `/v1/vms/${vm}/ranges`), 'E_NOT_FOUND', 404, 'deleted VM')
  isError(t, await req(app, 'DELETE', `/v1/vms/${vm}`), 'E_NOT_FOUND', 404, 'second delete')
  t.same((await residency(m, pid, a, 16 * P)).map((x) => x.location), ['gpu0'], 'device pages stay in VRAM after VM delete')
  t.same(await readBytes(t, app, pid, a, 16 * P), data, 'and the CPU still reads the bytes')
  t.equal((await req(app, 'GET', `/v1/vms/${vm2}/ranges`)).statusCode, 200, 'the other VM is untouched')
})

t.test('madvise sets attributes; attributes echoes them in the shape they were set', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  const vm = await newVm(app, 0, pid)
  const advise = async (body: Record<string, unknown>): Promise<void> => {
    const r = await req(app, 'POST', `/v1/vms/${vm}/madvise`, body)
    t.equal(r.statusCode, 204, `${JSON.stringify(body)}: ${r.body}`)
  }
  await advise({ addr: a, length: 4 * P, preferredLocation: 'system' })
  await advise({ addr: a + 4 * P, length: 4 * P, preferredLocation: { gpu: 1 }, atomic: 'global' })
  await advise({ addr: a + 8 * P, length: 2 * P, atomic: 'cpu' })
  await advise({ addr: a + 10 * P, length: 2 * P, preferredLocation: { gpu: 0 }, atomic: 'device' })
  const q = await raw(app, { method: 'GET', url: `/v1/vms/${vm}/attributes?addr=${hex(a)}&length=${hex(16 * P)}` })
  t.equal(q.statusCode, 200, q.body)
  t.same(q.json(), [
    { addr: a, length: 4 * P, preferredLocation: 'system', atomic: 'undefined' },
    { addr: a + 4 * P, length: 4 * P, preferredLocation: { gpu: 1 }, atomic: 'global' },
    { addr: a + 8 * P, length: 2 * P, preferredLocation: 'device', atomic: 'cpu' },
    { addr: a + 10 * P, length: 2 * P, preferredLocation: { gpu: 0 }, atomic: 'device' },
    { addr: a + 12 * P, length: 4 * P, preferredLocation: 'device', atomic: 'undefined' }
  ])
  // Attributes are per VM and cover the window asked for, mapped or not.
  const other = await newVm(app, 1, pid)
  t.same((await req(app, 'GET', `/v1/vms/${other}/attributes?addr=${a}&length=${16 * P}`)).json(),
    [{ addr: a, length: 16 * P, preferredLocation: 'device', atomic: 'undefined' }], 'another VM keeps the defaults')
  t.same((await req(app, 'GET', `/v1/vms/${vm}/attributes?addr=${a + 2 * P}&length=${4 * P}`)).json(), [
    { addr: a + 2 * P, length: 2 * P, preferredLocation: 'system', atomic: 'undefined' },
    { addr: a + 4 * P, length: 2 * P, preferredLocation: { gpu: 1 }, atomic: 'global' }
  ], 'runs are clipped to the window')

  // A GPU outside the VM's owner group: ENOLINK, nothing recorded.
  const before = (await req(app, 'GET', `/v1/vms/${vm}/attributes?addr=${a}&length=${16 * P}`)).json()
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/madvise`, { addr: a, length: 16 * P, preferredLocation: { gpu: 2 } }), 'ENOLINK', 422, 'foreign group')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/madvise`, { addr: a, length: 16 * P, preferredLocation: { gpu: 9 } }), 'E_NOT_FOUND', 404, 'no such GPU')
  t.same((await req(app, 'GET', `/v1/vms/${vm}/attributes?addr=${a}&length=${16 * P}`)).json(), before, 'rejected madvise changed nothing')
})

t.test('faults: read/write/atomic service a GPU fault; errors per the contract', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 64 * KiB })
  const ro = await mmap(app, pid, { length: 4 * P, prot: 'r' })
  const none = await mmap(app, pid, { length: 4 * P, prot: 'none' })
  const data = bytes(64 * KiB, 8)
  await putMem(app, pid, a, data)
  const vm = await newVm(app, 0, pid)

  const f = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a + 5 * P + 17, access: 'read' })
  t.equal(f.statusCode, 200, f.body)
  const res = f.json()
  t.equal(res.location, 'gpu0', 'CPU-touched anonymous memory migrates to the faulting GPU')
  t.equal(res.migrated, true)
  t.ok(res.range.start <= a + 5 * P + 17 && a + 5 * P + 17 < res.range.end, 'range holds the address')
  t.ok(res.range.start >= a && res.range.end <= a + 64 * KiB, 'range inside the VMA')
  const size = res.range.end - res.range.start
  t.ok([4 * KiB, 64 * KiB, 2 * MiB].includes(size) && res.range.start % size === 0, `range is one aligned chunk (${size})`)
  t.same((await residency(m, pid, res.range.start, size)).map((x) => x.location), ['gpu0'])
  const again = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a + 5 * P, access: 'write' })
  t.same(again.json(), { range: res.range, location: 'gpu0', migrated: false }, 'already there: no migration')
  const atomic = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a, access: 'atomic' })
  t.equal(atomic.statusCode, 200, atomic.body)
  t.equal(atomic.json().location, 'gpu0')

  // Preferred location system: mapped in place, nothing migrates.
  const b = await mmap(app, pid, { length: 4 * P })
  await putMem(app, pid, b, Buffer.from('sys'))
  await req(app, 'POST', `/v1/vms/${vm}/madvise`, { addr: b, length: 4 * P, preferredLocation: 'system' })
  const s = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: b, access: 'write' })
  t.equal(s.statusCode, 200, s.body)
  t.equal(s.json().location, 'system')
  t.equal(s.json().migrated, false)
  t.same((await residency(m, pid, b, P)).map((x) => x.location), ['system'])

  // Read-only memory: a read works, write/atomic are EPERM; prot none read is EFAULT; no VMA is ENOENT.
  t.equal((await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: ro, access: 'read' })).statusCode, 200)
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: ro, access: 'write' }), 'EPERM', 422, 'write fault on read-only')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: ro + P, access: 'atomic' }), 'EPERM', 422, 'atomic fault on read-only')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: none, access: 'write' }), 'EPERM', 422, 'write fault on prot none')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: none, access: 'read' }), 'EFAULT', 422, 'read fault on prot none')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a - 64 * P, access: 'read' }), 'ENOENT', 422, 'no VMA')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: TWO_47, access: 'read' }), 'EINVAL', 400, 'beyond the mirror')
  t.same(await readBytes(t, app, pid, a, 64 * KiB), data, 'bytes intact through all of it')
})

t.test('faults/batch (extension): one result per fault, failures reported in place', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 8 * P })
  const vm = await newVm(app, 0, pid)
  const r = await req(app, 'POST', `/v1/vms/${vm}/faults/batch`, {
    faults: [{ addr: a, access: 'write' }, { addr: a - 1024 * P, access: 'read' }, { addr: a + 7 * P, access: 'read' }],
    concurrency: 2
  })
  t.equal(r.statusCode, 200, r.body)
  const body = r.json()
  t.equal(body.results.length, 3)
  t.match(body.results[0], { ok: true, location: 'gpu0', range: { start: Number, end: Number }, latencyUs: Number })
  t.match(body.results[1], { ok: false, code: 'ENOENT', message: String })
  t.match(body.results[2], { ok: true })
  t.type(body.elapsedUs, 'number')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/faults/batch`, { faults: [{ addr: TWO_47, access: 'read' }] }), 'EINVAL', 400, 'beyond the mirror')
})

t.test('prefetch migrates and binds; skips holes; shared memory bound in place; ENOENT without VMA', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 32 * P })
  await req(app, 'POST', `/v1/processes/${pid}/munmap`, { addr: a + 8 * P, length: 8 * P })
  const data = bytes(32 * P, 12)
  await putMem(app, pid, a, data.subarray(0, 8 * P))
  await putMem(app, pid, a + 16 * P, data.subarray(16 * P))
  const vm = await newVm(app, 0, pid)

  const r = await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 32 * P, location: 'device' })
  t.equal(r.statusCode, 200, r.body)
  t.same(r.json(), { migratedBytes: 24 * P }, 'bytes whose residency changed (holes skipped)')
  t.same(await residency(m, pid, a, 32 * P), [{ addr: a, length: 8 * P, location: 'gpu0' }, { addr: a + 16 * P, length: 16 * P, location: 'gpu0' }])
  const ranges = (await req(app, 'GET', `/v1/vms/${vm}/ranges`)).json() as Array<{ start: number, end: number, bound: boolean, location: string }>
  t.ok(ranges.length > 0 && ranges.every((x) => x.bound && x.location === 'gpu0'), 'every range bound, in gpu0')
  t.ok(ranges.every((x) => x.end <= a + 8 * P || x.start >= a + 16 * P), 'no range over the hole')
  t.equal((await req(app, 'GET', '/v1/gpus/0')).json().vram.used, 24 * P, 'VRAM holds exactly those pages')
  const faultsBefore = (await req(app, 'GET', '/v1/gpus/0')).json().counters.faults
  const f = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a + 20 * P, access: 'write' })
  t.same(f.json().migrated, false, 'next access needs no migration')
  t.ok((await req(app, 'GET', '/v1/gpus/0')).json().counters.faults >= faultsBefore)

  // Rejected prefetches move nothing.
  const placed = await residency(m, pid, a, 32 * P)
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a + 8 * P, length: 8 * P, location: 'device' }), 'ENOENT', 422, 'only a hole')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 32 * P, location: { gpu: 2 } }), 'ENOLINK', 422, 'GPU of another group')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 32 * P, location: { gpu: 7 } }), 'E_NOT_FOUND', 404, 'no such GPU')
  isError(t, await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 32 * P + 1, location: 'system' }), 'EINVAL', 400, 'unaligned length')
  t.same(await residency(m, pid, a, 32 * P), placed, 'rejected prefetches moved nothing')
  t.same(await readBytes(t, app, pid, a, 8 * P), data.subarray(0, 8 * P), 'bytes intact')

  const back = await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a + 16 * P, length: 16 * P, location: 'system' })
  t.equal(back.statusCode, 200, back.body)
  t.same(back.json(), { migratedBytes: 16 * P })
  t.same((await residency(m, pid, a + 16 * P, 16 * P)).map((x) => x.location), ['system'])
  t.same(await readBytes(t, app, pid, a + 16 * P, 16 * P), data.subarray(16 * P), 'bytes intact after the round trip')

  const shm = await mmap(app, pid, { length: 4 * P, shared: true })
  await putMem(app, pid, shm, bytes(4 * P, 77))
  const s = await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: shm, length: 4 * P, location: 'device' })
  t.equal(s.statusCode, 200, s.body)
  t.same(s.json(), { migratedBytes: 0 }, 'shared memory is not migrated')
  t.same((await residency(m, pid, shm, 4 * P)).map((x) => x.location), ['system'])
  const sr = (await req(app, 'GET', `/v1/vms/${vm}/ranges`)).json() as Array<{ start: number, bound: boolean, flags: { migrateDevmem: boolean } }>
  const shared = sr.filter((x) => x.start >= shm && x.start < shm + 4 * P)
  t.ok(shared.length > 0 && shared.every((x) => x.bound && !x.flags.migrateDevmem), 'bound in place, not migratable')
  t.same(await readBytes(t, app, pid, shm, 4 * P), bytes(4 * P, 77), 'shared bytes intact')
})

t.test('snapshot: what a no-fault hmm_range_fault gives each VM; nothing moves', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  const ro = await mmap(app, pid, { length: 2 * P })
  await putMem(app, pid, ro, Buffer.from('x'))
  await req(app, 'POST', `/v1/processes/${pid}/mprotect`, { addr: ro, length: 2 * P, prot: 'r' })
  await putMem(app, pid, a + 8 * P, bytes(8 * P, 1))
  const vm0 = await newVm(app, 0, pid)
  const vm1 = await newVm(app, 1, pid)
  const vm2 = await newVm(app, 2, pid)
  await req(app, 'POST', `/v1/vms/${vm0}/prefetch`, { addr: a, length: 8 * P, location: 'device' })
  const snap = async (vm: number, addr: number, length: number): Promise<unknown> => {
    const r = await req(app, 'GET', `/v1/vms/${vm}/snapshot?addr=${hex(addr)}&length=${length}`)
    t.equal(r.statusCode, 200, r.body)
    return r.json()
  }
  const before = await residency(m, pid, a, 16 * P)
  t.same(await snap(vm0, a, 16 * P), { runs: [
    { addr: a, length: 8 * P, access: 'write', location: 'gpu0', inPlace: true },
    { addr: a + 8 * P, length: 8 * P, access: 'write', location: 'system', inPlace: false }
  ] }, 'own device pages in place; system pages writable')
  t.same(await snap(vm1, a, 8 * P), { runs: [{ addr: a, length: 8 * P, access: 'write', location: 'gpu0', inPlace: true }] }, 'same owner group maps gpu0 in place')
  t.same(await snap(vm2, a, 8 * P), { runs: [{ addr: a, length: 8 * P, access: 'none', location: 'gpu0', inPlace: false }] }, 'another group cannot')
  t.same(await snap(vm0, ro, 2 * P), { runs: [
    { addr: ro, length: P, access: 'read', location: 'system', inPlace: false },
    { addr: ro + P, length: P, access: 'none', location: 'unpopulated', inPlace: false }
  ] }, 'read-only system page is readable; an unpopulated page is not valid without a fault')
  t.same(await residency(m, pid, a, 16 * P), before, 'snapshot moved nothing')
})

t.test('ranges: each with start/end/location/bound/flags, following unmap', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 64 * KiB })
  await putMem(app, pid, a, bytes(64 * KiB, 2))
  const vm = await newVm(app, 0, pid)
  const f = (await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a, access: 'write' })).json()
  const r = await req(app, 'GET', `/v1/vms/${vm}/ranges`)
  t.equal(r.statusCode, 200)
  t.same(r.json(), [{
    start: f.range.start,
    end: f.range.end,
    location: 'gpu0',
    bound: true,
    flags: { migrateDevmem: true, unmapped: false, partialUnmap: false, hasDevmemPages: true, hasDmaMapping: true }
  }])
  await req(app, 'POST', `/v1/processes/${pid}/munmap`, { addr: a, length: P })
  const after = (await req(app, 'GET', `/v1/vms/${vm}/ranges`)).json() as Array<{ start: number, bound: boolean, flags: Record<string, boolean> }>
  for (const x of after.filter((y) => y.start === f.range.start)) {
    t.equal(x.bound, false, 'an unmapped range is no longer bound')
    t.equal(x.flags.unmapped, true)
    t.equal(x.flags.hasDmaMapping, false)
  }
  t.same(await readBytes(t, app, pid, a + P, 15 * P), bytes(64 * KiB, 2).subarray(P), 'remaining pages keep their bytes')
})

t.test('exec: every op, results and stats; an op that fails stops the job with opIndex', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 64 * KiB })
  const vm = await newVm(app, 0, pid)
  const payload = bytes(3000, 31)
  const r = await req(app, 'POST', `/v1/vms/${vm}/exec`, {
    ops: [
      { op: 'write', addr: a + 10, data: payload.toString('base64') },
      { op: 'read', addr: a + 10, length: 3000 },
      { op: 'fill', addr: a + 4 * P, length: 2 * P, byte: 0xab },
      { op: 'write_u32', addr: a + 8 * P, value: 0xdeadbeef },
      { op: 'read_u32', addr: a + 8 * P },
      { op: 'atomic_add', addr: a + 8 * P, value: 2 },
      { op: 'read_u32', addr: a + 8 * P },
      { op: 'copy', src: a + 10, dst: a + 12 * P, length: 3000 },
      { op: 'checksum', addr: a + 4 * P, length: 2 * P }
    ]
  })
  t.equal(r.statusCode, 200, r.body)
  const { results, stats } = r.json()
  t.equal(results.length, 9)
  t.same(results[0], {})
  t.same(Buffer.from(results[1].data, 'base64'), payload, 'read returns what write wrote (base64)')
  t.same(results[2], {})
  t.same(results[3], {})
  t.same(results[4], { value: 0xdeadbeef })
  t.same(results[5], { old: 0xdeadbeef })
  t.same(results[6], { value: 0xdeadbef1 })
  t.same(results[7], {})
  t.same(results[8], { sha256: createHash('sha256').update(Buffer.alloc(2 * P, 0xab)).digest('hex') })
  t.match(stats, { faults: Number, migratedToDevice: Number, migratedToSystem: Number, p2pBytes: Number })
  t.ok(stats.faults > 0 && stats.migratedToDevice > 0, 'the job faulted memory into VRAM')

  // The CPU sees what the GPU did.
  t.same(await readBytes(t, app, pid, a + 10, 3000), payload)
  t.same(await readBytes(t, app, pid, a + 12 * P, 3000), payload, 'copy')
  t.same(await readBytes(t, app, pid, a + 4 * P, 2 * P), Buffer.alloc(2 * P, 0xab), 'fill')
  const u = await readBytes(t, app, pid, a + 8 * P, 4)
  t.equal(u.readUInt32LE(0), 0xdeadbef1, 'u32 little-endian')

  // A failing op: the ops before it took effect; the error names the op.
  const fail = await req(app, 'POST', `/v1/vms/${vm}/exec`, {
    ops: [{ op: 'write_u32', addr: a, value: 7 }, { op: 'read', addr: a - 1024 * P, length: 4 }, { op: 'write_u32', addr: a + 4, value: 9 }]
  })
  isError(t, fail, 'ENOENT', 422, 'op 1 has no VMA')
  t.equal(fail.json().opIndex, 1)
  t.equal((await readBytes(t, app, pid, a, 8)).readUInt32LE(0), 7, 'op 0 took effect')
  t.equal((await readBytes(t, app, pid, a, 8)).readUInt32LE(4), 0, 'op 2 did not run')

  const ro = await mmap(app, pid, { length: P, prot: 'r' })
  const perm = await req(app, 'POST', `/v1/vms/${vm}/exec`, { ops: [{ op: 'read_u32', addr: ro }, { op: 'write_u32', addr: ro, value: 1 }] })
  isError(t, perm, 'EPERM', 422, 'write to read-only memory')
  t.equal(perm.json().opIndex, 1)
  const unaligned = await req(app, 'POST', `/v1/vms/${vm}/exec`, { ops: [{ op: 'atomic_add', addr: a + 2, value: 1 }] })
  isError(t, unaligned, 'EINVAL', 400, 'unaligned u32')
  t.equal(unaligned.json().opIndex, 0)
})

t.test('exec spanning the end of the mirror is refused before any op runs', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const top = await mmap(app, pid, { addr: TWO_47 - 4 * P, length: 4 * P })
  const a = await mmap(app, pid, { length: 4 * P })
  await putMem(app, pid, top, bytes(4 * P, 3))
  const vm = await newVm(app, 0, pid)
  const w = { pids: [pid], vms: [vm], windows: [[pid, top, 4 * P], [pid, a, 4 * P]] as Array<[number, number, number]> }
  const fp = await fingerprint(m, w)
  const cases: Array<[string, unknown[]]> = [
    ['read', [{ op: 'read', addr: TWO_47 - 4, length: 8 }]],
    ['write', [{ op: 'write', addr: TWO_47 - 2, data: Buffer.alloc(4, 1).toString('base64') }]],
    ['fill', [{ op: 'fill', addr: TWO_47 - P, length: 2 * P, byte: 1 }]],
    ['checksum', [{ op: 'checksum', addr: TWO_47 - P, length: 2 * P }]],
    ['copy dst', [{ op: 'copy', src: a, dst: TWO_47 - 4, length: 8 }]],
    ['copy src', [{ op: 'copy', src: TWO_47 - 4, dst: a, length: 8 }]],
    ['after a good op', [{ op: 'fill', addr: a, length: P, byte: 9 }, { op: 'read', addr: TWO_47 - 1, length: 2 }]]
  ]
  for (const [name, ops] of cases) {
    const r = await req(app, 'POST', `/v1/vms/${vm}/exec`, { ops })
    isError(t, r, 'EINVAL', 400, name)
    t.equal(r.json().opIndex, ops.length - 1, `${name}: opIndex`)
    t.same(await fingerprint(m, w), fp, `${name}: nothing changed`)
  }
  // The last bytes below 2^47 are fine.
  const ok = await req(app, 'POST', `/v1/vms/${vm}/exec`, { ops: [{ op: 'read_u32', addr: TWO_47 - 4 }, { op: 'read', addr: TWO_47 - 8, length: 8 }] })
  t.equal(ok.statusCode, 200, ok.body)
  t.same(ok.json().results[0], { value: bytes(4 * P, 3).readUInt32LE(4 * P - 4) })
})

t.test('a lost GPU: its VMs answer ENODEV (503), new VMs on it too, others keep working', async (t) => {
  const m = await fourGpus(t)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 8 * P })
  await putMem(app, pid, a, bytes(8 * P, 6))
  const vm3 = await newVm(app, 3, pid)
  const vm0 = await newVm(app, 0, pid)
  m.cluster.kill(3)
  const vmsBefore = m.cluster.coordinator.vms.size
  isError(t, await req(app, 'POST', '/v1/vms', { gpu: 3, pid }), 'ENODEV', 503, 'create on a lost GPU')
  t.equal(m.cluster.coordinator.vms.size, vmsBefore, 'no VM recorded')
  isError(t, await req(app, 'POST', `/v1/vms/${vm3}/faults`, { addr: a, access: 'read' }), 'ENODEV', 503, 'fault')
  isError(t, await req(app, 'POST', `/v1/vms/${vm3}/exec`, { ops: [{ op: 'read', addr: a, length: 4 }] }), 'ENODEV', 503, 'exec')
  isError(t, await req(app, 'POST', `/v1/vms/${vm3}/madvise`, { addr: a, length: P, atomic: 'device' }), 'ENODEV', 503, 'madvise')
  isError(t, await req(app, 'POST', `/v1/vms/${vm3}/prefetch`, { addr: a, length: P, location: 'device' }), 'ENODEV', 503, 'prefetch')
  isError(t, await req(app, 'GET', `/v1/vms/${vm3}/ranges`), 'ENODEV', 503, 'ranges')
  isError(t, await req(app, 'GET', `/v1/vms/${vm3}/attributes?addr=${a}&length=${P}`), 'ENODEV', 503, 'attributes')
  isError(t, await req(app, 'POST', `/v1/vms/${vm0}/madvise`, { addr: a, length: P, preferredLocation: { gpu: 3 } }), 'ENODEV', 503, 'madvise naming the lost GPU')
  t.equal((await req(app, 'POST', `/v1/vms/${vm0}/faults`, { addr: a, access: 'read' })).statusCode, 200, 'a VM on another GPU works')
  t.equal((await req(app, 'DELETE', `/v1/vms/${vm3}`)).statusCode, 204, 'a VM of a lost GPU can still be deleted')
  t.same(await readBytes(t, app, pid, a, 8 * P), bytes(8 * P, 6))
})

/**
 * Processes and CPU memory over REST (DESIGN.md §2): what each endpoint does
 * to the simulated mm, observed through the REST API itself (VMA lists, bytes
 * read back, residency runs).
 */
import t from 'tap'
import { bytes } from '../../helpers/mm-harness.js'
import { restMachine } from '../../helpers/rest.js'
import { KiB, P, TWO_47, getMem, hex, isError, mmap, newProcess, newVm, putMem, raw, readBytes, req } from './rest-kit.js'

t.test('POST /v1/processes creates empty processes with distinct pids (no body, {}, empty JSON body)', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const before = m.cluster.coordinator.processCount
  const a = await raw(app, { method: 'POST', url: '/v1/processes' })
  const b = await req(app, 'POST', '/v1/processes', {})
  const c = await raw(app, { method: 'POST', url: '/v1/processes', payload: '', contentType: 'application/json' })
  const pids: number[] = []
  for (const r of [a, b, c]) {
    t.equal(r.statusCode, 201, r.body)
    t.same(Object.keys(r.json()), ['pid'])
    pids.push(r.json().pid)
  }
  t.equal(new Set(pids).size, 3, 'three distinct pids')
  t.equal(m.cluster.coordinator.processCount, before + 3)
  for (const pid of pids) {
    const g = await req(app, 'GET', `/v1/processes/${pid}`)
    t.equal(g.statusCode, 200)
    t.same(g.json(), { pid, vmas: [] }, 'a new process has no mappings')
  }
})

t.test('mmap places anonymous mappings, honours prot/shared, and MAP_FIXED replaces', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)

  const r = await req(app, 'POST', `/v1/processes/${pid}/mmap`, { length: 64 * KiB })
  t.equal(r.statusCode, 201, r.body)
  const a = r.json().addr as number
  t.equal(a % P, 0, 'page aligned')
  t.ok(a > 0 && a + 64 * KiB <= TWO_47, 'inside user space')
  const ro = await mmap(app, pid, { length: 2 * P, prot: 'r' })
  const none = await mmap(app, pid, { length: P, prot: 'none' })
  const shm = await mmap(app, pid, { length: 4 * P, shared: true })
  const vmas = (await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas as Array<{ addr: number }>
  t.same(
    [...vmas].sort((x, y) => x.addr - y.addr),
    [
      { addr: a, length: 64 * KiB, prot: 'rw', shared: false },
      { addr: ro, length: 2 * P, prot: 'r', shared: false },
      { addr: none, length: P, prot: 'none', shared: false },
      { addr: shm, length: 4 * P, prot: 'rw', shared: true }
    ].sort((x, y) => x.addr - y.addr),
    'GET /v1/processes/:pid lists every mapping with its prot and sharing'
  )

  // A fresh mapping reads as zeros; a read-only one is readable.
  t.same(await readBytes(t, app, pid, ro, 2 * P), Buffer.alloc(2 * P))

  // MAP_FIXED over written memory: the old bytes are gone.
  const data = bytes(3 * P, 7)
  t.equal((await putMem(app, pid, a, data)).statusCode, 204)
  t.same(await readBytes(t, app, pid, a, 3 * P), data)
  const fixed = await req(app, 'POST', `/v1/processes/${pid}/mmap`, { addr: a + P, length: P, prot: 'rw' })
  t.equal(fixed.statusCode, 201, fixed.body)
  t.same(fixed.json(), { addr: a + P }, 'fixed placement returns the address asked for')
  const after = await readBytes(t, app, pid, a, 3 * P)
  t.same(after.subarray(0, P), data.subarray(0, P), 'page before the fixed mapping untouched')
  t.same(after.subarray(P, 2 * P), Buffer.alloc(P), 'replaced page reads zeros')
  t.same(after.subarray(2 * P), data.subarray(2 * P), 'page after untouched')

  // Fixed placement in a free spot at a chosen address.
  const free = a - 256 * P
  const f2 = await req(app, 'POST', `/v1/processes/${pid}/mmap`, { addr: free, length: 2 * P })
  t.same(f2.json(), { addr: free })
})

t.test('munmap removes pages (splitting a mapping); CPU access there is EFAULT', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 8 * P })
  const data = bytes(8 * P, 3)
  t.equal((await putMem(app, pid, a, data)).statusCode, 204)
  const r = await req(app, 'POST', `/v1/processes/${pid}/munmap`, { addr: a + 2 * P, length: 2 * P })
  t.equal(r.statusCode, 204, r.body)
  t.equal(r.body, '', 'no body on 204')
  t.same((await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas, [
    { addr: a, length: 2 * P, prot: 'rw', shared: false },
    { addr: a + 4 * P, length: 4 * P, prot: 'rw', shared: false }
  ])
  isError(t, await getMem(app, pid, a + 2 * P, 1), 'EFAULT', 422, 'read in the hole')
  isError(t, await putMem(app, pid, a + 3 * P, Buffer.from('x')), 'EFAULT', 422, 'write in the hole')
  t.same(await readBytes(t, app, pid, a, 2 * P), data.subarray(0, 2 * P), 'bytes before the hole survive')
  t.same(await readBytes(t, app, pid, a + 4 * P, 4 * P), data.subarray(4 * P), 'bytes after the hole survive')
  // Unmapping nothing is not an error (as the kernel).
  t.equal((await req(app, 'POST', `/v1/processes/${pid}/munmap`, { addr: a + 2 * P, length: 2 * P })).statusCode, 204)
  t.same(await readBytes(t, app, pid, a + 4 * P, 4 * P), data.subarray(4 * P))
})

t.test('mremap shrinks, grows, moves and copies (dontUnmap) with the bytes', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 4 * P })
  const data = bytes(4 * P, 11)
  await putMem(app, pid, a, data)

  // Shrink in place.
  let r = await req(app, 'POST', `/v1/processes/${pid}/mremap`, { addr: a, oldLength: 4 * P, newLength: 2 * P })
  t.equal(r.statusCode, 200, r.body)
  t.same(r.json(), { addr: a })
  t.same((await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas, [{ addr: a, length: 2 * P, prot: 'rw', shared: false }])
  isError(t, await getMem(app, pid, a + 2 * P, 4), 'EFAULT', 422, 'shrunk tail is gone')

  // Grow (in place or moved: the bytes follow either way).
  r = await req(app, 'POST', `/v1/processes/${pid}/mremap`, { addr: a, oldLength: 2 * P, newLength: 6 * P })
  t.equal(r.statusCode, 200, r.body)
  const grown = r.json().addr as number
  const g = await readBytes(t, app, pid, grown, 6 * P)
  t.same(g.subarray(0, 2 * P), data.subarray(0, 2 * P), 'grown mapping keeps its bytes')
  t.same(g.subarray(2 * P), Buffer.alloc(4 * P), 'new part is zero')

  // Move to a fixed new address.
  const target = grown + 1024 * P
  r = await req(app, 'POST', `/v1/processes/${pid}/mremap`, { addr: grown, oldLength: 6 * P, newLength: 6 * P, newAddr: target })
  t.equal(r.statusCode, 200, r.body)
  t.same(r.json(), { addr: target })
  t.same(await readBytes(t, app, pid, target, 2 * P), data.subarray(0, 2 * P), 'moved bytes')
  isError(t, await getMem(app, pid, grown, 4), 'EFAULT', 422, 'old place unmapped after a move')

  // dontUnmap: a copy of the mapping moves, the old span stays mapped.
  const copyTo = target + 4096 * P
  r = await req(app, 'POST', `/v1/processes/${pid}/mremap`, { addr: target, oldLength: 2 * P, newLength: 2 * P, newAddr: copyTo, dontUnmap: true })
  t.equal(r.statusCode, 200, r.body)
  t.same(r.json(), { addr: copyTo })
  t.same(await readBytes(t, app, pid, copyTo, 2 * P), data.subarray(0, 2 * P), 'pages moved to the new address')
  const old = await getMem(app, pid, target, 2 * P)
  t.equal(old.statusCode, 200, 'old span still mapped with dontUnmap')
  const addrs = (await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas.map((v: { addr: number }) => v.addr)
  t.ok(addrs.includes(copyTo) && addrs.some((x: number) => x <= target), 'both spans listed')
})

t.test('mprotect changes what the CPU may do', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 4 * P })
  const data = bytes(4 * P, 5)
  await putMem(app, pid, a, data)

  let r = await req(app, 'POST', `/v1/processes/${pid}/mprotect`, { addr: a + P, length: P, prot: 'r' })
  t.equal(r.statusCode, 204, r.body)
  t.same((await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas, [
    { addr: a, length: P, prot: 'rw', shared: false },
    { addr: a + P, length: P, prot: 'r', shared: false },
    { addr: a + 2 * P, length: 2 * P, prot: 'rw', shared: false }
  ])
  isError(t, await putMem(app, pid, a + P, Buffer.from('no')), 'EFAULT', 422, 'write to a read-only page')
  t.same(await readBytes(t, app, pid, a, 4 * P), data, 'read-only page still readable, nothing written')

  r = await req(app, 'POST', `/v1/processes/${pid}/mprotect`, { addr: a + P, length: P, prot: 'none' })
  t.equal(r.statusCode, 204)
  isError(t, await getMem(app, pid, a + P, 1), 'EFAULT', 422, 'read of a prot none page')

  r = await req(app, 'POST', `/v1/processes/${pid}/mprotect`, { addr: a, length: 4 * P, prot: 'rw' })
  t.equal(r.statusCode, 204)
  t.same((await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas.map((v: { prot: string }) => v.prot).every((p: string) => p === 'rw'), true)
  t.equal((await putMem(app, pid, a + P, Buffer.from('ok'))).statusCode, 204)
  t.same((await readBytes(t, app, pid, a + P, 2)).toString(), 'ok', 'writable again')

  isError(t, await req(app, 'POST', `/v1/processes/${pid}/mprotect`, { addr: a, length: 8 * P, prot: 'r' }), 'ENOMEM', 422, 'span not fully mapped')
  t.same((await req(app, 'GET', `/v1/processes/${pid}`)).json().vmas.map((v: { prot: string }) => v.prot), ['rw'], 'failed mprotect changed nothing')
})

t.test('PUT/GET /memory: raw bytes at any offset, decimal or hex addresses, any content type', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 64 * KiB })
  const data = bytes(3 * P + 123, 9)
  const at = a + 1000
  const w = await raw(app, { method: 'PUT', url: `/v1/processes/${pid}/memory?addr=${hex(at)}`, payload: data, contentType: 'application/octet-stream' })
  t.equal(w.statusCode, 204, w.body)
  const dec = await getMem(app, pid, at, data.length)
  t.equal(dec.statusCode, 200)
  t.match(dec.headers['content-type'], /application\/octet-stream/)
  t.same(dec.rawPayload, data, 'decimal query reads back the bytes')
  const hx = await raw(app, { method: 'GET', url: `/v1/processes/${pid}/memory?addr=${hex(at).toUpperCase().replace('0X', '0x')}&length=0X${data.length.toString(16)}` })
  t.same(hx.rawPayload, data, 'hex query (either case) reads back the bytes')
  t.same((await readBytes(t, app, pid, a, 1000)), Buffer.alloc(1000), 'bytes before the write are zero')

  // Any content type, or none: the body is bytes.
  t.equal((await putMem(app, pid, a, Buffer.from('{"json":1}'), 'application/json')).statusCode, 204)
  t.equal((await readBytes(t, app, pid, a, 10)).toString(), '{"json":1}')
  t.equal((await raw(app, { method: 'PUT', url: `/v1/processes/${pid}/memory?addr=${a + 20}`, payload: 'plain' })).statusCode, 204)
  t.equal((await readBytes(t, app, pid, a + 20, 5)).toString(), 'plain')

  // A write larger than the 16 MiB JSON limit (PUT /memory goes to 64 MiB).
  const big = await mmap(app, pid, { length: 20 * 1024 * KiB })
  const blob = bytes(17 * 1024 * KiB + 5, 21)
  const bw = await putMem(app, pid, big + 3, blob)
  t.equal(bw.statusCode, 204, bw.body)
  const br = await getMem(app, pid, big + 3, blob.length)
  t.equal(br.statusCode, 200)
  t.ok(br.rawPayload.equals(blob), '17 MiB read back intact')
})

t.test('residency: runs of unpopulated/system/gpuN inside VMAs only; reads leave pages unpopulated', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  // Carve a hole: [a, a+4P) and [a+8P, a+16P) remain.
  await req(app, 'POST', `/v1/processes/${pid}/munmap`, { addr: a + 4 * P, length: 4 * P })
  const residency = async (addr: number, length: number, fmt: (n: number) => string = String): Promise<unknown> => {
    const r = await raw(app, { method: 'GET', url: `/v1/processes/${pid}/residency?addr=${fmt(addr)}&length=${fmt(length)}` })
    t.equal(r.statusCode, 200, r.body)
    return r.json()
  }
  t.same(await residency(a, 16 * P), { runs: [{ addr: a, length: 4 * P, location: 'unpopulated' }, { addr: a + 8 * P, length: 8 * P, location: 'unpopulated' }] }, 'holes omitted')
  t.same(await readBytes(t, app, pid, a, 4 * P), Buffer.alloc(4 * P), 'a never-written page reads zeros')
  t.same(await residency(a, 4 * P, hex), { runs: [{ addr: a, length: 4 * P, location: 'unpopulated' }] }, 'the read left it unpopulated (hex query)')

  await putMem(app, pid, a + P, Buffer.from('x'))
  await putMem(app, pid, a + 9 * P, bytes(2 * P, 1))
  t.same(await residency(a, 16 * P), {
    runs: [
      { addr: a, length: P, location: 'unpopulated' },
      { addr: a + P, length: P, location: 'system' },
      { addr: a + 2 * P, length: 2 * P, location: 'unpopulated' },
      { addr: a + 8 * P, length: P, location: 'unpopulated' },
      { addr: a + 9 * P, length: 2 * P, location: 'system' },
      { addr: a + 11 * P, length: 5 * P, location: 'unpopulated' }
    ]
  })
  t.same(await residency(a - 64 * P, 128 * P), await residency(a, 16 * P), 'a window wider than the mappings lists the same runs')
  t.same(await residency(a + 4 * P, 4 * P), { runs: [] }, 'a window over the hole only is empty')

  // A GPU touches a page: it is in that GPU's VRAM now.
  const vm = await newVm(app, 0, pid)
  const f = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a + 9 * P, access: 'write' })
  t.equal(f.statusCode, 200, f.body)
  const runs = (await residency(a + 8 * P, 8 * P) as { runs: Array<{ addr: number, length: number, location: string }> }).runs
  const at = (x: number): string | undefined => runs.find((r) => x >= r.addr && x < r.addr + r.length)?.location
  t.equal(at(a + 9 * P), 'gpu0', 'faulted page now lives in gpu0')
  t.same(await readBytes(t, app, pid, a + 9 * P, 2 * P), bytes(2 * P, 1), 'CPU read brings the bytes back intact')
  const back = (await residency(a + 9 * P, P) as { runs: Array<{ location: string }> }).runs
  t.same(back.map((r) => r.location), ['system'], 'after the CPU fault the page is in system memory')
})

t.test('fork: the child sees the parent\'s mappings and bytes, copy-on-write both ways', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const parent = await newProcess(app)
  const a = await mmap(app, parent, { length: 4 * P })
  const s = await mmap(app, parent, { length: 2 * P, shared: true })
  const data = bytes(4 * P, 2)
  await putMem(app, parent, a, data)
  await putMem(app, parent, s, Buffer.from('shared'))

  const variants = [
    await raw(app, { method: 'POST', url: `/v1/processes/${parent}/fork` }),
    await req(app, 'POST', `/v1/processes/${parent}/fork`, {}),
    await raw(app, { method: 'POST', url: `/v1/processes/${parent}/fork`, payload: '', contentType: 'application/json' })
  ]
  for (const r of variants) t.equal(r.statusCode, 201, r.body)
  const kids = variants.map((r) => r.json().pid as number)
  t.equal(new Set([parent, ...kids]).size, 4, 'every fork is a new pid')
  const child = kids[0] as number
  t.same((await req(app, 'GET', `/v1/processes/${child}`)).json().vmas, (await req(app, 'GET', `/v1/processes/${parent}`)).json().vmas, 'same VMAs')
  t.same((await req(app, 'GET', `/v1/processes/${child}`)).json().pid, child)
  t.same(await readBytes(t, app, child, a, 4 * P), data, 'child reads the parent\'s bytes')

  await putMem(app, child, a, Buffer.from('child'))
  await putMem(app, parent, a + P, Buffer.from('parent'))
  t.same(await readBytes(t, app, parent, a, 5), data.subarray(0, 5), 'child write invisible to the parent')
  t.same(await readBytes(t, app, child, a + P, 6), data.subarray(P, P + 6), 'parent write invisible to the child')
  t.equal((await readBytes(t, app, child, a, 5)).toString(), 'child')

  await putMem(app, child, s, Buffer.from('SHARED'))
  t.equal((await readBytes(t, app, parent, s, 6)).toString(), 'SHARED', 'shared mapping stays shared')
})

t.test('DELETE /v1/processes/:pid frees everything: the pid, its VMs and its VRAM', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const pid = await newProcess(app)
  const other = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  const b = await mmap(app, other, { length: 4 * P })
  await putMem(app, other, b, Buffer.from('keep'))
  const vm = await newVm(app, 0, pid)
  const pf = await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 16 * P, location: 'device' })
  t.equal(pf.statusCode, 200, pf.body)
  t.equal((await req(app, 'GET', '/v1/gpus/0')).json().vram.used, 16 * P, 'prefetch put the pages in VRAM')
  const vmsBefore = m.cluster.coordinator.vms.size

  const d = await req(app, 'DELETE', `/v1/processes/${pid}`)
  t.equal(d.statusCode, 204, d.body)
  isError(t, await req(app, 'GET', `/v1/processes/${pid}`), 'E_NOT_FOUND', 404, 'process gone')
  isError(t, await req(app, 'GET', `/v1/vms/${vm}/ranges`), 'E_NOT_FOUND', 404, 'its VM gone')
  t.equal(m.cluster.coordinator.vms.size, vmsBefore - 1)
  t.equal((await req(app, 'GET', '/v1/gpus/0')).json().vram.used, 0, 'its VRAM is back in the allocator')
  isError(t, await req(app, 'DELETE', `/v1/processes/${pid}`), 'E_NOT_FOUND', 404, 'second delete')
  t.equal((await readBytes(t, app, other, b, 4)).toString(), 'keep', 'other processes untouched')
})

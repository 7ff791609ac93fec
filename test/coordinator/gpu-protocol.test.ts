/**
 * The coordinator's GPU-facing side driven by a scripted test-double GPU
 * (test/helpers/fake-gpu.ts), over the in-memory transport and over a real
 * WebSocket: registration, find_or_insert + hmm_range_fault, DMA, migration
 * both ways through the CPU fault path, synchronous invalidation, and a GPU
 * that never acknowledges being declared lost while the others carry on.
 */
import t, { type Test } from 'tap'
import { Coordinator } from '../../services/coordinator/coordinator.js'
import { CoordinatorApi } from '../../services/coordinator/api.js'
import { defaultTopology } from '../../services/coordinator/topology/topology.js'
import { buildCoordinatorApp } from '../../services/coordinator/http/app.js'
import { Scheduler } from '../../shared/transport/scheduler.js'
import { createMemoryPair } from '../../shared/transport/memory.js'
import { connectWs } from '../../shared/transport/ws.js'
import { hmmExpand, hmmId, hmmIsDevice } from '../../shared/svm/page-id.js'
import { FakeGpu } from './../helpers/fake-gpu.js'
import { bytes } from '../helpers/mm-harness.js'
import type { Connection } from '../../shared/transport/types.js'

const P = 4096
const N = { id: 1, start: 0x7e0000000000, end: 0x7e0020000000 }

type Link = (c: Coordinator) => Promise<Connection>

const memoryLink: Link = async (c) => {
  const [gpuSide, coordSide] = createMemoryPair(new Scheduler({ seed: 3 }), 'fake', 'coordinator')
  c.attachGpu(coordSide)
  return gpuSide
}

async function wsLink (t: Test): Promise<Link> {
  return async (c) => {
    const app = await buildCoordinatorApp({ coordinator: c })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    const addr = app.server.address() as { port: number }
    return await connectWs(`ws://127.0.0.1:${addr.port}/v1/gpu-link`, 'coordinator')
  }
}


async function scenario (t: Test, link: Link): Promise<void> {
  const c = new Coordinator({ topology: defaultTopology(2, 64 * 1024 * 1024), invalidateDeadlineMs: 300 })
  t.teardown(async () => { await c.close() })
  const api = new CoordinatorApi(c)

  // Registration rules.
  const stray = new FakeGpu(7, await link(c))
  await t.rejects(stray.register(), { code: 'E_NOT_FOUND' }, 'an id outside the topology')
  const liar = new FakeGpu(0, await link(c))
  await t.rejects(liar.register(128 * 1024 * 1024), { code: 'EINVAL' }, 'VRAM size differs from the topology')
  await t.rejects(liar.peer.request('svm.hmm_range_fault', { pid: 1, notifier: 1, start: 0, end: P, fault: true, write: false, ownerless: false }), { code: 'EPERM' }, 'nothing before registering')
  const g0 = new FakeGpu(0, await link(c))
  const g1 = new FakeGpu(1, await link(c))
  await g0.register()
  await g1.register()
  t.equal(c.gpus.allOnline, true)
  t.equal(g0.owner, g1.owner, 'linked GPUs share an owner group')

  // A process with data; the fake GPU faults it in (find_or_insert + hmm in one call).
  const { pid } = api.createProcess()
  const { addr } = await api.mmap(pid, { length: 2 * 1024 * 1024, addr: N.start })
  const data = bytes(3 * P, 8)
  await api.writeMemory(pid, addr, data)
  const r = await g0.peer.request('svm.range_prepare', {
    pid, notifier: N, range: null, migrate: null, fault: { write: false },
    locate: { addr: addr + P, gvaStart: 0, gvaEnd: 2 ** 47, overlaps: [false, false, false], readOnly: true, checkPagesThreshold: 65536, devmemPossible: true }
  })
  t.same([r.result.start, r.result.end], [addr, addr + 2 * 1024 * 1024], 'a 2 MiB chunk')
  const pages = r.result.pages
  if (pages === null || !pages.ok) throw new Error('no pages')
  const entries = hmmExpand(pages.pages.runs, 512) ?? []
  t.equal(entries.length, 512)
  const frame = hmmId(entries[1] as number)
  const read = await g0.peer.request('dma.read', { segs: [frame, 0, P] })
  t.same(Buffer.from(read.data?.chunks[0] ?? []), data.subarray(P, 2 * P), 'DMA reads the CPU-written bytes')
  await g0.peer.request('dma.write', { segs: [frame, 10, 5] }, { data: [Buffer.from('hello')] })
  t.same(await api.readMemory(pid, addr + P + 10, 5), Buffer.from('hello'), 'CPU sees the DMA write')
  await t.rejects(g0.peer.request('dma.read', { segs: [999999, 0, P] }), { code: 'EFAULT' }, 'DMA to a frame nobody maps')

  // Migration to the fake's VRAM; a CPU read faults it back through migrate_to_ram.
  await g0.migrateIn(pid, N, addr, addr + 4 * P, 100)
  t.same(api.residency(pid, addr, 4 * P).runs, [{ addr, length: 4 * P, location: 'gpu0' }])
  const inPlace = await g0.peer.request('svm.hmm_range_fault', { pid, notifier: N.id, start: addr, end: addr + P, fault: true, write: false, ownerless: false })
  t.ok(hmmIsDevice(inPlace.result.runs[0] as number), 'the owner gets its device page in place')
  g0.vram.get(101)?.write('vram!', 0)
  const back = await api.readMemory(pid, addr + P, 5)
  t.same(back, Buffer.from('vram!'), 'the CPU fault brought the device page back')
  t.same(api.residency(pid, addr, 4 * P).runs, [{ addr, length: 4 * P, location: 'system' }])

  // Invalidation is synchronous: munmap waits for every acknowledgement.
  await g0.migrateIn(pid, N, addr + 8 * P, addr + 9 * P, 200)
  g0.ackDelayMs = 50
  const t0 = Date.now()
  await api.munmap(pid, { addr: addr + 8 * P, length: P })
  t.ok(Date.now() - t0 >= 45, 'munmap waited for the acknowledgement')
  t.same(g0.invalidations.at(-1)?.events.map((e) => [e.event, e.start, e.end]), [['unmap', addr + 8 * P, addr + 9 * P]])
  t.ok(g0.freed.includes(200), 'the device page was freed before munmap returned')
  g0.ackDelayMs = 0

  // A GPU that never acknowledges is declared lost by the deadline.
  await g0.migrateIn(pid, N, addr + 16 * P, addr + 17 * P, 300)
  g0.mode = 'hang'
  const t1 = Date.now()
  await api.mprotect(pid, { addr: addr + 32 * P, length: P, prot: 'r' })
  const waited = Date.now() - t1
  t.ok(waited >= 250 && waited < 3000, `mprotect went on after the deadline (${waited} ms)`)
  t.equal(c.gpus.get(0).state, 'lost')
  await c.settled()
  await t.rejects(api.readMemory(pid, addr + 16 * P, 4), { code: 'EIO' }, 'its pages are poisoned, not zeros')
  t.same(await api.readMemory(pid, addr, 5), data.subarray(0, 5), 'everything else is intact')
  const r1 = await g1.peer.request('svm.range_prepare', {
    pid, notifier: N, range: null, migrate: null, fault: { write: true },
    locate: { addr: addr + 64 * P, gvaStart: 0, gvaEnd: 2 ** 47, overlaps: [false, false, false], readOnly: false, checkPagesThreshold: 65536, devmemPossible: true }
  })
  t.ok(r1.result.pages?.ok, 'the other GPU carries on')
  const topo = await api.topology()
  t.same(topo.gpus.map((g) => g.state), ['lost', 'online'])
  await api.munmap(pid, { addr: addr + 16 * P, length: P })
  t.same(await api.readMemory(pid, addr + 16 * P, 4).catch((e: { code: string }) => e.code), 'EFAULT', 'poison goes away with the mapping')
}

t.test('over the in-memory transport', async (t) => { await scenario(t, memoryLink) })
t.test('over a real WebSocket', async (t) => { await scenario(t, await wsLink(t)) })

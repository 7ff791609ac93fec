/**
 * The coordinator and two GPU processes as real processes over WebSocket:
 * a hostile client on the GPU link is rejected while the GPUs keep serving;
 * a GPU process that dies is declared lost (its pages fail with EIO, the
 * other GPU carries on) and comes back online with empty VRAM.
 */
import t from 'tap'
import WebSocket from 'ws'
import { spawnCluster } from '../../services/cluster/spawned.js'
import { RestClient } from '../helpers/rest-client.js'
import { encodeFrame } from '../../shared/transport/codec.js'
import { decodeFrame } from '../../shared/transport/codec.js'

const M2 = 2 * 1024 * 1024

function hostile (url: string): Promise<{ ws: WebSocket, replies: unknown[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws') + '/v1/gpu-link')
    const replies: unknown[] = []
    ws.on('message', (data: Buffer) => {
      const d = decodeFrame(data)
      if (d.ok) for (const m of d.batch) replies.push(m.env)
    })
    ws.once('open', () => { resolve({ ws, replies }) })
    ws.once('error', reject)
  })
}

async function until (what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const t0 = Date.now()
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('a hostile client is rejected while the GPUs keep working', async (t) => {
  const c = await spawnCluster({ gpus: 2 })
  t.teardown(c.stop)
  const api = new RestClient(c.url)
  const { ws, replies } = await hostile(c.url)
  t.teardown(() => { ws.terminate() })
  ws.send('{"t":"q","id":1,"m":"gpu.register"}') // text frames are not the protocol
  ws.send(Buffer.from([1, 2, 3])) // shorter than its length prefix
  ws.send(Buffer.from([255, 255, 255, 127, 0, 0])) // header longer than the frame
  const notJson = Buffer.alloc(8); notJson.writeUInt32LE(4, 0); notJson.write('nope', 4)
  ws.send(notJson)
  ws.send(encodeFrame([{ env: { t: 'q', id: 5, m: 'no.such.method', p: {} } }]))
  ws.send(encodeFrame([{ env: { t: 'q', id: 6, m: 'svm.hmm_range_fault', p: { pid: 'x' } } }]))
  ws.send(encodeFrame([{ env: { t: 'q', id: 7, m: 'dma.read', p: { segs: [1, 0, 4096] } } }]))
  ws.send(encodeFrame([{ env: { t: 'q', id: 8, m: 'gpu.register', p: { gpu: 42, vramBytes: 1, instance: 'evil' } } }]))
  ws.send(encodeFrame([{ env: { t: 'zz' } }, { env: [] }, { env: null as unknown as object }]))
  await until('error replies', async () => replies.length >= 4)
  const codes = Object.fromEntries((replies as Array<{ id: number, code: string }>).map((r) => [r.id, r.code]))
  t.same(codes, { 5: 'E_VALIDATION', 6: 'E_VALIDATION', 7: 'EPERM', 8: 'E_NOT_FOUND' })

  // Both GPUs still serve a process while the hostile socket is open.
  const { pid } = await api.createProcess()
  const { addr } = await api.mmap(pid, { length: M2 })
  await api.writeMemory(pid, addr, Buffer.alloc(M2, 7))
  for (const gpu of [0, 1]) {
    const { vm } = await api.createVm({ gpu, pid })
    const r = await api.exec(vm, { ops: [{ op: 'checksum', addr, length: M2 }, { op: 'read_u32', addr: addr + 4 }] })
    t.equal(r.results[1]?.value, 0x07070707, `gpu${gpu} reads the data`)
  }
  const topo = await api.topology()
  t.same(topo.gpus.map((g) => g.state), ['online', 'online'], 'no GPU was disturbed')
  const metrics = await (await fetch(`${c.url}/metrics`)).text()
  const malformed = Number(/gpusvm_malformed_messages_total (\d+)/.exec(metrics)?.[1] ?? 0)
  t.ok(malformed >= 7, `malformed messages counted (${malformed})`)
  const refused = await new Promise<string>((resolve) => {
    const bad = new WebSocket(c.url.replace('http', 'ws') + '/not-a-link')
    bad.once('error', (err) => { resolve(err.message) })
    bad.once('open', () => { bad.close(); resolve('open') })
  })
  t.match(refused, /404/, 'upgrades elsewhere are refused')
})

t.test('a GPU process that dies is lost, its pages poisoned, and it comes back empty', async (t) => {
  const c = await spawnCluster({ gpus: 2, restart: true })
  t.teardown(c.stop)
  const api = new RestClient(c.url)
  const { pid } = await api.createProcess()
  const { addr } = await api.mmap(pid, { length: 2 * M2 })
  await api.writeMemory(pid, addr, Buffer.alloc(2 * M2, 3))
  const { vm: vm1 } = await api.createVm({ gpu: 1, pid })
  await api.exec(vm1, { ops: [{ op: 'fill', addr, length: M2, byte: 9 }] })
  t.equal((await api.residency(pid, addr, M2)).runs[0]?.location, 'gpu1')
  const before = c.gpuPid(1)
  c.signalGpu(1, 'SIGKILL')
  await until('gpu1 lost', async () => (await api.topology()).gpus[1]?.state === 'lost' || c.gpuPid(1) !== before)
  const err = await api.readMemory(pid, addr, 4).catch((e: { code: string }) => e.code)
  t.equal(err, 'EIO', 'pages that were in its VRAM fail loudly')
  t.same(await api.readMemory(pid, addr + M2, 4), Buffer.alloc(4, 3), 'the rest of the process is intact')
  const { vm: vm0 } = await api.createVm({ gpu: 0, pid })
  const r = await api.exec(vm0, { ops: [{ op: 'read_u32', addr: addr + M2 }] })
  t.equal(r.results[0]?.value, 0x03030303, 'the other GPU carries on')
  await until('gpu1 back online', async () => (await api.topology()).gpus[1]?.state === 'online')
  t.not(c.gpuPid(1), before, 'a new process')
  t.equal((await api.gpu(1)).vram.used, 0, 'with empty VRAM')
  t.equal((await api.exec(vm1, { ops: [{ op: 'read', addr, length: 1 }] }).catch((e: { code: string }) => e.code)), 'ENODEV', 'the old VM went with it')
  await api.munmap(pid, { addr, length: M2 })
  const { vm: fresh } = await api.createVm({ gpu: 1, pid })
  const { addr: a2 } = await api.mmap(pid, { length: M2 })
  await api.writeMemory(pid, a2, Buffer.from('again'))
  const again = await api.exec(fresh, { ops: [{ op: 'read', addr: a2, length: 5 }] })
  t.equal(Buffer.from(again.results[0]?.data as string, 'base64').toString(), 'again', 'the restarted GPU serves new work')
})

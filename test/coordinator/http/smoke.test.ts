import t from 'tap'
import { restMachine, call } from '../../helpers/rest.js'

t.test('REST front door drives the machine', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  t.equal((await call(app, 'GET', '/healthz')).statusCode, 200)
  t.equal((await call(app, 'GET', '/readyz')).statusCode, 200)
  const p = await call(app, 'POST', '/v1/processes', {})
  t.equal(p.statusCode, 201)
  const pid = p.json().pid
  const mm = await call(app, 'POST', `/v1/processes/${pid}/mmap`, { length: 65536 })
  t.equal(mm.statusCode, 201)
  const addr = mm.json().addr
  const put = await app.inject({ method: 'PUT', url: `/v1/processes/${pid}/memory?addr=0x${addr.toString(16)}`, payload: Buffer.from('hello'), headers: { 'content-type': 'application/octet-stream' } })
  t.equal(put.statusCode, 204, put.body)
  const get = await app.inject({ method: 'GET', url: `/v1/processes/${pid}/memory?addr=${addr}&length=5` })
  t.equal(get.body, 'hello')
  const vm = (await call(app, 'POST', '/v1/vms', { gpu: 0, pid })).json().vm
  const ex = await call(app, 'POST', `/v1/vms/${vm}/exec`, { ops: [{ op: 'read', addr, length: 5 }] })
  t.equal(ex.statusCode, 200, ex.body)
  t.equal(Buffer.from(ex.json().results[0].data, 'base64').toString(), 'hello')
  const bad = await call(app, 'POST', `/v1/processes/${pid}/mmap`, { length: -1 })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'E_VALIDATION')
  const topo = await call(app, 'GET', '/v1/topology')
  t.equal(topo.statusCode, 200, topo.body)
  t.equal(topo.json().gpus[0].state, 'online')
  const gpu = await call(app, 'GET', '/v1/gpus/0')
  t.equal(gpu.statusCode, 200, gpu.body)
  t.ok(gpu.json().vram.used > 0)
  const docs = await call(app, 'GET', '/documentation/json')
  t.equal(docs.statusCode, 200)
  t.ok(docs.json().paths['/v1/vms/{vm}/exec'])
  const metrics = await call(app, 'GET', '/metrics')
  t.match(metrics.body, /gpusvm_processes 1/)
})

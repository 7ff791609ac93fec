/**
 * Topology and devices (GET /v1/topology, /v1/owners, /v1/gpus/:gpu), the
 * service routes (/healthz, /readyz, /metrics, /documentation) and the
 * OpenAPI contract: /documentation/json lists every implemented path of
 * DESIGN.md §2 with its parameters and request bodies.
 */
import t from 'tap'
import { restMachine } from '../../helpers/rest.js'
import { MiB, P, isError, mmap, newProcess, newVm, raw, req } from './rest-kit.js'

t.test('GET /v1/topology: GPUs with state, owner and VRAM; links', async (t) => {
  const m = await restMachine({ gpus: 4, vram: 16 * MiB })
  t.teardown(m.close)
  const app = m.app
  const r = await req(app, 'GET', '/v1/topology')
  t.equal(r.statusCode, 200, r.body)
  const topo = r.json()
  t.same(topo.gpus.map((g: { id: number }) => g.id), [0, 1, 2, 3])
  for (const g of topo.gpus) {
    t.equal(g.state, 'online')
    t.same(g.vram, { total: 16 * MiB, used: 0 }, `gpu${g.id} vram`)
    t.type(g.owner, 'number')
  }
  const owner = (id: number): number => topo.gpus[id].owner
  t.equal(owner(0), owner(1), 'linked gpu0 and gpu1 share an owner')
  t.equal(owner(2), owner(3), 'linked gpu2 and gpu3 share an owner')
  t.not(owner(0), owner(2), 'the two pairs are different groups')
  t.equal(topo.links.length, 2)
  t.match(topo.links, [{ a: 0, b: 1, up: true, bandwidthGBps: Number, latencyUs: Number }, { a: 2, b: 3, up: true }])

  // VRAM use shows up per GPU.
  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 32 * P })
  const vm = await newVm(app, 2, pid)
  t.equal((await req(app, 'POST', `/v1/vms/${vm}/prefetch`, { addr: a, length: 32 * P, location: 'device' })).statusCode, 200)
  const used = (await req(app, 'GET', '/v1/topology')).json().gpus.map((g: { vram: { used: number } }) => g.vram.used)
  t.same(used, [0, 0, 32 * P, 0], 'only gpu2 holds the prefetched pages')

  // A lost GPU: state lost, no owner, out of its group.
  m.cluster.kill(3)
  const lost = (await req(app, 'GET', '/v1/topology')).json()
  t.match(lost.gpus[3], { id: 3, state: 'lost', owner: null })
  t.same((await req(app, 'GET', '/v1/owners')).json().find((g: { owner: number }) => g.owner === owner(2)).gpus, [2])
})

t.test('GET /v1/owners: groups of pairwise-linked GPUs, matching the topology', async (t) => {
  const m = await restMachine({ gpus: 4, vram: 16 * MiB })
  t.teardown(m.close)
  const r = await req(m.app, 'GET', '/v1/owners')
  t.equal(r.statusCode, 200)
  const groups = r.json() as Array<{ owner: number, gpus: number[] }>
  t.same(groups.map((g) => g.gpus), [[0, 1], [2, 3]])
  const topo = (await req(m.app, 'GET', '/v1/topology')).json()
  for (const g of groups) {
    for (const id of g.gpus) t.equal(topo.gpus[id].owner, g.owner, `gpu${id} owner ${g.owner}`)
  }
  const single = await restMachine({ gpus: 1 })
  t.teardown(single.close)
  t.same((await req(single.app, 'GET', '/v1/owners')).json().map((g: { gpus: number[] }) => g.gpus), [[0]])
})

t.test('GET /v1/gpus/:gpu: VRAM, pagemap, shrinker and counters that follow the work', async (t) => {
  const m = await restMachine({ gpus: 2, vram: 16 * MiB })
  t.teardown(m.close)
  const app = m.app
  const r0 = await req(app, 'GET', '/v1/gpus/1')
  t.equal(r0.statusCode, 200, r0.body)
  const g0 = r0.json()
  t.match(g0, {
    id: 1,
    state: 'online',
    owner: Number,
    vram: { total: 16 * MiB, used: 0, free: 16 * MiB, largestFree: Number },
    pagemap: { id: Number, refs: Number, state: /^(active|inactive|destroyed)$/ },
    shrinker: { count: Number },
    counters: { faults: 0, invalidations: 0, migratedToDevice: 0, migratedToSystem: 0, p2pBytes: 0, evictions: 0, migrations: { systemToDevice: 0, deviceToSystem: 0, peerDirect: 0, peerViaSystem: 0 } }
  })

  const pid = await newProcess(app)
  const a = await mmap(app, pid, { length: 16 * P })
  const vm = await newVm(app, 1, pid)
  t.equal((await req(app, 'GET', '/v1/gpus/1')).json().pagemap.state, 'active', 'a VM holds the pagemap active')
  await raw(app, { method: 'PUT', url: `/v1/processes/${pid}/memory?addr=${a}`, payload: Buffer.alloc(16 * P, 1) })
  const f = await req(app, 'POST', `/v1/vms/${vm}/faults`, { addr: a, access: 'write' })
  t.equal(f.statusCode, 200, f.body)
  const size = f.json().range.end - f.json().range.start
  const g1 = (await req(app, 'GET', '/v1/gpus/1')).json()
  t.equal(g1.counters.faults, 1, 'one fault counted')
  t.equal(g1.counters.migratedToDevice, size, 'bytes placed in VRAM')
  t.equal(g1.counters.migrations.systemToDevice, 1, 'one migration')
  t.equal(g1.vram.used, size)
  t.equal(g1.vram.free, 16 * MiB - size, 'free = total - used')
  t.equal((await req(app, 'GET', '/v1/gpus/0')).json().counters.faults, 0, 'the other GPU did nothing')

  // The CPU takes the pages back: the giving GPU counts it.
  t.equal((await raw(app, { method: 'GET', url: `/v1/processes/${pid}/memory?addr=${a}&length=${size}` })).statusCode, 200)
  const g2 = (await req(app, 'GET', '/v1/gpus/1')).json()
  t.equal(g2.counters.migratedToSystem, size)
  t.equal(g2.counters.migrations.deviceToSystem, 1)
  t.equal(g2.vram.used, 0, 'freeing is synchronous')

  isError(t, await req(app, 'GET', '/v1/gpus/2'), 'E_NOT_FOUND', 404, 'unknown GPU')
  isError(t, await req(app, 'GET', '/v1/gpus/x'), 'E_VALIDATION', 400, 'non-numeric GPU id')

  m.cluster.kill(1)
  t.match((await req(app, 'GET', '/v1/gpus/1')).json(), { id: 1, state: 'lost', owner: null }, 'a lost GPU is still described')
})

t.test('service routes: /healthz, /readyz, /metrics, /documentation', async (t) => {
  const m = await restMachine({ gpus: 2 })
  t.teardown(m.close)
  const app = m.app
  const h = await req(app, 'GET', '/healthz')
  t.equal(h.statusCode, 200)
  t.same(h.json(), { ok: true })
  const ready = await req(app, 'GET', '/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { ready: true, waiting: [] })

  const pid = await newProcess(app)
  await newProcess(app)
  await newVm(app, 0, pid)
  await req(app, 'GET', '/v1/processes/999')
  const metrics = await req(app, 'GET', '/metrics')
  t.equal(metrics.statusCode, 200)
  t.match(metrics.headers['content-type'], /^text\/plain/)
  t.match(metrics.body, /^gpusvm_processes 2$/m)
  t.match(metrics.body, /^gpusvm_vms 1$/m)
  t.match(metrics.body, /^gpusvm_gpus\{state="online"\} 2$/m)
  t.match(metrics.body, /^gpusvm_http_requests_total\{route="\/v1\/processes",method="POST",status="201"\} 2$/m)
  t.match(metrics.body, /^gpusvm_http_requests_total\{route="\/v1\/processes\/:pid",method="GET",status="404"\} 1$/m, 'labelled by route pattern, not URL')
  t.match(metrics.body, /^# TYPE gpusvm_http_requests_total counter$/m)

  const docs = await req(app, 'GET', '/documentation')
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
  t.match(docs.body, /swagger/i, 'the OpenAPI UI')

  // readyz turns 503 when a configured GPU is not online.
  m.cluster.kill(1)
  const notReady = await req(app, 'GET', '/readyz')
  t.equal(notReady.statusCode, 503)
  t.same(notReady.json(), { ready: false, waiting: [{ gpu: 1, state: 'lost' }] })
  t.equal((await req(app, 'GET', '/healthz')).statusCode, 200, 'still alive')
  t.match((await req(app, 'GET', '/metrics')).body, /^gpusvm_gpus\{state="lost"\} 1$/m)
})

/** DESIGN.md §2 paths implemented by the coordinator, in OpenAPI form, with methods. */
const CONTRACT: Record<string, string[]> = {
  '/v1/topology': ['get'],
  '/v1/owners': ['get'],
  '/v1/gpus/{gpu}': ['get'],
  '/v1/processes': ['post'],
  '/v1/processes/{pid}': ['get', 'delete'],
  '/v1/processes/{pid}/fork': ['post'],
  '/v1/processes/{pid}/mmap': ['post'],
  '/v1/processes/{pid}/munmap': ['post'],
  '/v1/processes/{pid}/mremap': ['post'],
  '/v1/processes/{pid}/mprotect': ['post'],
  '/v1/processes/{pid}/memory': ['get', 'put'],
  '/v1/processes/{pid}/residency': ['get'],
  '/v1/vms': ['post'],
  '/v1/vms/{vm}': ['delete'],
  '/v1/vms/{vm}/madvise': ['post'],
  '/v1/vms/{vm}/attributes': ['get'],
  '/v1/vms/{vm}/prefetch': ['post'],
  '/v1/vms/{vm}/faults': ['post'],
  '/v1/vms/{vm}/snapshot': ['get'],
  '/v1/vms/{vm}/ranges': ['get'],
  '/v1/vms/{vm}/exec': ['post']
}

/** Required and optional body fields per DESIGN.md §2. */
const BODIES: Record<string, { required: string[], optional: string[] }> = {
  'post /v1/processes/{pid}/mmap': { required: ['length'], optional: ['addr', 'prot', 'shared'] },
  'post /v1/processes/{pid}/munmap': { required: ['addr', 'length'], optional: [] },
  'post /v1/processes/{pid}/mremap': { required: ['addr', 'oldLength', 'newLength'], optional: ['newAddr', 'dontUnmap'] },
  'post /v1/processes/{pid}/mprotect': { required: ['addr', 'length', 'prot'], optional: [] },
  'post /v1/vms': { required: ['gpu', 'pid'], optional: [] },
  'post /v1/vms/{vm}/madvise': { required: ['addr', 'length'], optional: ['preferredLocation', 'atomic'] },
  'post /v1/vms/{vm}/prefetch': { required: ['addr', 'length', 'location'], optional: [] },
  'post /v1/vms/{vm}/faults': { required: ['addr', 'access'], optional: [] },
  'post /v1/vms/{vm}/exec': { required: ['ops'], optional: [] }
}

const QUERIES: Record<string, string[]> = {
  'get /v1/processes/{pid}/memory': ['addr', 'length'],
  'put /v1/processes/{pid}/memory': ['addr'],
  'get /v1/processes/{pid}/residency': ['addr', 'length'],
  'get /v1/vms/{vm}/attributes': ['addr', 'length'],
  'get /v1/vms/{vm}/snapshot': ['addr', 'length']
}

interface Op { parameters?: Array<{ in: string, name: string, required?: boolean }>, requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>, required?: string[], additionalProperties?: boolean } }> } }

t.test('OpenAPI contract: /documentation/json lists every implemented path of DESIGN.md §2', async (t) => {
  const m = await restMachine()
  t.teardown(m.close)
  const app = m.app
  const r = await req(app, 'GET', '/documentation/json')
  t.equal(r.statusCode, 200)
  const doc = r.json() as { openapi: string, paths: Record<string, Record<string, Op>> }
  t.match(doc.openapi, /^3\./)
  for (const [path, methods] of Object.entries(CONTRACT)) {
    const item = doc.paths[path]
    t.ok(item, `${path} documented`)
    if (item === undefined) continue
    for (const method of methods) {
      const op = item[method]
      t.ok(op, `${method.toUpperCase()} ${path} documented`)
      if (op === undefined) continue
      const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1])
      const params = op.parameters ?? []
      t.same(params.filter((p) => p.in === 'path').map((p) => p.name).sort(), pathParams.sort(), `${method} ${path}: path parameters`)
      const q = QUERIES[`${method} ${path}`]
      if (q !== undefined) {
        t.same(params.filter((p) => p.in === 'query').map((p) => p.name).sort(), [...q].sort(), `${method} ${path}: query parameters`)
        t.ok(params.filter((p) => p.in === 'query').every((p) => p.required === true), 'query parameters required')
      }
      const b = BODIES[`${method} ${path}`]
      if (b !== undefined) {
        const schema = op.requestBody?.content['application/json']?.schema
        t.ok(schema, `${method} ${path}: JSON body documented`)
        t.same([...(schema?.required ?? [])].sort(), [...b.required].sort(), `${method} ${path}: required fields`)
        t.same(Object.keys(schema?.properties ?? {}).sort(), [...b.required, ...b.optional].sort(), `${method} ${path}: fields`)
        t.equal(schema?.additionalProperties, false, `${method} ${path}: unknown fields rejected`)
      }
    }
  }
  for (const hidden of ['/healthz', '/readyz', '/metrics']) t.notOk(doc.paths[hidden], `${hidden} is not part of the API document`)

  // Every documented operation is routed (no "no route" 404 for any of them).
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) {
      const url = path.replace(/\{\w+\}/g, '1')
      const res = await raw(app, { method: method.toUpperCase(), url })
      t.notOk(res.statusCode === 404 && /no route/.test(res.body), `${method.toUpperCase()} ${path} is served (${res.statusCode})`)
    }
  }
})

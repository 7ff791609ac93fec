/** GPU VMs (DESIGN.md §2): each a drm_gpusvm on one GPU, mirroring one process. */
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { SnapshotReply, SpanQuery, VmCreateBody, VmParams, VmReply } from '../../../../shared/schemas/rest.js'
import { ErrorBody } from '../../../../shared/schemas/common.js'
import {
  AttributeRun, ExecBody, FaultBatchBody, FaultBatchResult, FaultBody, FaultResult, MadviseBody, PrefetchBody,
  PrefetchResult, RangeInfo
} from '../../../../shared/schemas/vm.js'
import type { CoordinatorApi } from '../../api.js'
import { parseId, parseLength, parseNumber } from '../params.js'

const tags = ['vms']
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 503: ErrorBody }

export async function vmRoutes (app: FastifyInstance, opts: { api: CoordinatorApi }): Promise<void> {
  const api = opts.api
  const f = app.withTypeProvider<TypeBoxTypeProvider>()
  const vmOf = (p: { vm: string }): number => parseId(p.vm)

  f.post('/v1/vms', { schema: { tags, summary: 'Create a GPU VM for a process on a GPU', body: VmCreateBody, response: { 201: VmReply, ...errors } } }, async (req, reply) => {
    return await reply.code(201).send(await api.createVm(req.body))
  })

  f.delete('/v1/vms/:vm', { schema: { tags, params: VmParams } }, async (req, reply) => {
    await api.deleteVm(vmOf(req.params))
    return await reply.code(204).send()
  })

  f.post('/v1/vms/:vm/madvise', { schema: { tags, params: VmParams, body: MadviseBody } }, async (req, reply) => {
    await api.madvise(vmOf(req.params), req.body)
    return await reply.code(204).send()
  })

  f.get('/v1/vms/:vm/attributes', { schema: { tags, params: VmParams, querystring: SpanQuery, response: { 200: Type.Array(AttributeRun), ...errors } } }, async (req) => {
    return await api.attributes(vmOf(req.params), parseNumber(req.query.addr, 'addr'), parseLength(req.query.length, 'length', 2 ** 48))
  })

  f.post('/v1/vms/:vm/prefetch', { schema: { tags, params: VmParams, body: PrefetchBody, response: { 200: PrefetchResult, ...errors } } }, async (req) => {
    return await api.prefetch(vmOf(req.params), req.body)
  })

  f.post('/v1/vms/:vm/faults', { schema: { tags, summary: 'Inject one GPU page fault and service it', params: VmParams, body: FaultBody, response: { 200: FaultResult, ...errors } } }, async (req) => {
    return await api.fault(vmOf(req.params), req.body)
  })

  f.post('/v1/vms/:vm/faults/batch', {
    schema: { tags, summary: 'Inject many faults, `concurrency` in flight, with service times (extension)', params: VmParams, body: FaultBatchBody, response: { 200: FaultBatchResult, ...errors } }
  }, async (req) => {
    return await api.faultBatch(vmOf(req.params), req.body)
  })

  f.get('/v1/vms/:vm/snapshot', { schema: { tags, summary: 'A no-fault hmm_range_fault from this VM\'s point of view', params: VmParams, querystring: SpanQuery, response: { 200: SnapshotReply, ...errors } } }, async (req) => {
    return api.snapshot(vmOf(req.params), parseNumber(req.query.addr, 'addr'), parseLength(req.query.length, 'length', 2 ** 48))
  })

  f.get('/v1/vms/:vm/ranges', { schema: { tags, params: VmParams, response: { 200: Type.Array(RangeInfo), ...errors } } }, async (req) => {
    return await api.ranges(vmOf(req.params))
  })

  f.post('/v1/vms/:vm/exec', { schema: { tags, summary: 'Run a GPU job through the VM\'s page table', params: VmParams, body: ExecBody } }, async (req) => {
    return await api.exec(vmOf(req.params), req.body)
  })
}

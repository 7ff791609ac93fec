/** Topology and devices (DESIGN.md §2). */
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { GpuParams, OwnersReply, TopologyReply } from '../../../../shared/schemas/rest.js'
import { Closed, ErrorBody, Id } from '../../../../shared/schemas/common.js'
import { GpuInfo } from '../../../../shared/schemas/vm.js'
import type { CoordinatorApi } from '../../api.js'
import { parseId } from '../params.js'

const tags = ['topology']
const GpuReply = Closed({
  id: Id,
  state: Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('lost')]),
  owner: Type.Union([Type.Integer(), Type.Null()]),
  ...GpuInfo.properties
})

export async function topologyRoutes (app: FastifyInstance, opts: { api: CoordinatorApi }): Promise<void> {
  const api = opts.api
  const f = app.withTypeProvider<TypeBoxTypeProvider>()
  f.get('/v1/topology', { schema: { tags, response: { 200: TopologyReply } } }, async () => await api.topology())
  f.get('/v1/owners', { schema: { tags, summary: 'Owner groups: GPUs that map each other\'s VRAM in place', response: { 200: OwnersReply } } }, async () => api.owners())
  f.get('/v1/gpus/:gpu', { schema: { tags, params: GpuParams, response: { 200: GpuReply, 404: ErrorBody } } }, async (req) => {
    return await api.gpu(parseId(req.params.gpu))
  })
}

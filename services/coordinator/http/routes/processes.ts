/** Processes and CPU memory (DESIGN.md §2): the simulated CPU side. */
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { svmError } from '../../../../shared/errors.js'
import {
  AddrQuery, AddrReply, MmapBody, MprotectBody, MremapBody, PidParams, PidReply, ProcessInfo,
  ResidencyReply, SpanBody, SpanQuery
} from '../../../../shared/schemas/rest.js'
import { ErrorBody } from '../../../../shared/schemas/common.js'
import type { CoordinatorApi } from '../../api.js'
import { parseId, parseLength, parseNumber } from '../params.js'
import { noBody } from './no-body.js'

export const MAX_MEMORY_BYTES = 64 * 1024 * 1024
const tags = ['processes']
const errors = { 400: ErrorBody, 404: ErrorBody, 422: ErrorBody }

export async function processRoutes (app: FastifyInstance, opts: { api: CoordinatorApi }): Promise<void> {
  const api = opts.api
  const f = app.withTypeProvider<TypeBoxTypeProvider>()

  f.post('/v1/processes', { schema: { tags, summary: 'Create a process (an empty mm)', response: { 201: PidReply, ...errors } } }, async (req, reply) => {
    noBody(req.body)
    return await reply.code(201).send(api.createProcess())
  })

  f.get('/v1/processes/:pid', { schema: { tags, params: PidParams, response: { 200: ProcessInfo, ...errors } } }, async (req) => api.getProcess(parseId(req.params.pid)))

  f.delete('/v1/processes/:pid', { schema: { tags, summary: 'Exit: frees every page, VRAM allocation and GPU VM of it', params: PidParams } }, async (req, reply) => {
    await api.deleteProcess(parseId(req.params.pid))
    return await reply.code(204).send()
  })

  f.post('/v1/processes/:pid/fork', { schema: { tags, summary: 'fork(): a copy-on-write child', params: PidParams, response: { 201: PidReply, ...errors } } }, async (req, reply) => {
    noBody(req.body)
    return await reply.code(201).send(await api.fork(parseId(req.params.pid)))
  })

  f.post('/v1/processes/:pid/mmap', { schema: { tags, summary: 'Anonymous mmap (addr = MAP_FIXED)', params: PidParams, body: MmapBody, response: { 201: AddrReply, ...errors } } }, async (req, reply) => {
    return await reply.code(201).send(await api.mmap(parseId(req.params.pid), req.body))
  })

  f.post('/v1/processes/:pid/munmap', { schema: { tags, params: PidParams, body: SpanBody } }, async (req, reply) => {
    await api.munmap(parseId(req.params.pid), req.body)
    return await reply.code(204).send()
  })

  f.post('/v1/processes/:pid/mremap', { schema: { tags, params: PidParams, body: MremapBody, response: { 200: AddrReply, ...errors } } }, async (req) => {
    return await api.mremap(parseId(req.params.pid), req.body)
  })

  f.post('/v1/processes/:pid/mprotect', { schema: { tags, params: PidParams, body: MprotectBody } }, async (req, reply) => {
    await api.mprotect(parseId(req.params.pid), req.body)
    return await reply.code(204).send()
  })

  f.get('/v1/processes/:pid/memory', {
    schema: { tags, summary: 'A CPU read (raw bytes)', params: PidParams, querystring: SpanQuery }
  }, async (req, reply) => {
    const pid = parseId(req.params.pid)
    const addr = parseNumber(req.query.addr, 'addr')
    const length = parseLength(req.query.length, 'length', MAX_MEMORY_BYTES)
    const data = await api.readMemory(pid, addr, length)
    return await reply.type('application/octet-stream').send(data)
  })

  f.get('/v1/processes/:pid/residency', {
    schema: { tags, summary: 'Where each page lives (no fault, no migration)', params: PidParams, querystring: SpanQuery, response: { 200: ResidencyReply, ...errors } }
  }, async (req) => {
    return api.residency(parseId(req.params.pid), parseNumber(req.query.addr, 'addr'), parseLength(req.query.length, 'length', 2 ** 48))
  })

  // CPU writes take raw bytes of any content type, up to 64 MiB.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers()
    raw.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_MEMORY_BYTES }, (_req, body, done) => { done(null, body) })
    raw.withTypeProvider<TypeBoxTypeProvider>().put('/v1/processes/:pid/memory', {
      bodyLimit: MAX_MEMORY_BYTES,
      schema: { tags, summary: 'A CPU write of the raw request body', params: PidParams, querystring: AddrQuery }
    }, async (req, reply) => {
      const pid = parseId(req.params.pid)
      const addr = parseNumber(req.query.addr, 'addr')
      if (!Buffer.isBuffer(req.body) || req.body.byteLength === 0) throw svmError('E_VALIDATION', 'body must be the bytes to write')
      await api.writeMemory(pid, addr, req.body)
      return await reply.code(204).send()
    })
  })
}

/** Liveness, readiness (every configured GPU registered) and metrics. */
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { Coordinator } from '../../coordinator.js'

export async function serviceRoutes (app: FastifyInstance, opts: { coordinator: Coordinator, registry: Registry }): Promise<void> {
  const c = opts.coordinator
  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }))
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const waiting = [...c.gpus.entries.values()].filter((e) => e.state !== 'online').map((e) => ({ gpu: e.id, state: e.state }))
    return await reply.code(waiting.length === 0 ? 200 : 503).send({ ready: waiting.length === 0, waiting })
  })
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    return await reply.type(opts.registry.contentType).send(await opts.registry.metrics())
  })
}

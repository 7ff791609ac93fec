/**
 * The coordinator's HTTP front door: the whole REST contract of DESIGN.md
 * §2, OpenAPI at /documentation, health, readiness and metrics, and the
 * WebSocket endpoint GPU processes register on. Routes are thin: the work is
 * in CoordinatorApi. buildCoordinatorApp returns the instance without
 * listening, so tests inject requests.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { CoordinatorApi } from '../api.js'
import type { Coordinator } from '../coordinator.js'
import { frameworkError, installErrorHandling } from './errors.js'
import { coordinatorMetrics } from './metrics.js'
import { acceptGpuLinks } from './gpu-link.js'
import { processRoutes } from './routes/processes.js'
import { serviceRoutes } from './routes/service.js'
import { topologyRoutes } from './routes/topology.js'
import { vmRoutes } from './routes/vms.js'

export const JSON_BODY_LIMIT = 16 * 1024 * 1024

export interface CoordinatorAppOptions {
  coordinator: Coordinator
  logger?: FastifyBaseLogger
}

export async function buildCoordinatorApp (opts: CoordinatorAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger !== undefined ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: JSON_BODY_LIMIT,
    forceCloseConnections: 'idle',
    // Errors raised before routing (a bad percent-escape in the URL, an over-long path id) get the same body as every other error.
    frameworkErrors: frameworkError,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } }
  }) as unknown as FastifyInstance
  installErrorHandling(app)

  // No body (or an empty one) is fine where a route takes none; the schema decides elsewhere.
  const json = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') { done(null, undefined); return }
    json(req, body as string, done)
  })

  await app.register(swagger, {
    openapi: {
      info: { title: 'gpusvm-emu', version: '0.1.0', description: 'Networked emulator of Linux multi-device GPU shared virtual memory' },
      tags: [{ name: 'processes' }, { name: 'vms' }, { name: 'topology' }]
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) }
  })
  await app.register(swaggerUi, { routePrefix: '/documentation' })

  const api = new CoordinatorApi(opts.coordinator)
  const { registry, http } = coordinatorMetrics(opts.coordinator)
  app.addHook('onResponse', async (req, reply) => {
    http.inc({ route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) })
  })
  await app.register(serviceRoutes, { coordinator: opts.coordinator, registry })
  await app.register(processRoutes, { api })
  await app.register(topologyRoutes, { api })
  await app.register(vmRoutes, { api })
  acceptGpuLinks(app, opts.coordinator)
  return app
}

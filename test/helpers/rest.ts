/** The REST app over an in-process machine, driven with app.inject. */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildCoordinatorApp } from '../../services/coordinator/http/app.js'
import { machine, type TestMachine } from './cluster.js'
import type { InProcessOptions } from '../../services/cluster/in-process.js'

export interface RestMachine extends TestMachine { app: FastifyInstance }

export async function restMachine (opts: InProcessOptions & { gpus?: number, vram?: number } = {}): Promise<RestMachine> {
  const m = await machine(opts)
  const app = await buildCoordinatorApp({ coordinator: m.cluster.coordinator })
  await app.ready()
  return { ...m, app, close: async () => { await app.close(); await m.close() } }
}

export async function call (app: FastifyInstance, method: string, url: string, body?: unknown): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: method as 'GET',
    url,
    ...(body !== undefined ? { payload: body as Record<string, unknown>, headers: { 'content-type': 'application/json' } } : {})
  })
}

/** A GPU process's own endpoints: liveness, readiness (registered), metrics. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { GpuDevice } from '../gpu-device.js'

export interface GpuAppOptions {
  gpu: number
  device: () => GpuDevice | null
  logger?: FastifyBaseLogger
}

export async function buildGpuApp (opts: GpuAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ ...(opts.logger !== undefined ? { loggerInstance: opts.logger } : { logger: false }), forceCloseConnections: 'idle' }) as unknown as FastifyInstance
  const registry = new Registry()
  registry.setDefaultLabels({ gpu: String(opts.gpu) })
  collectDefaultMetrics({ register: registry, prefix: 'gpusvm_gpu_' })
  const fromCounters = (name: string, help: string, read: (d: GpuDevice) => number): void => {
    new Gauge({ name, help, registers: [registry], collect () { const d = opts.device(); if (d !== null) this.set(read(d)) } })
  }
  fromCounters('gpusvm_gpu_faults', 'GPU page faults serviced', (d) => d.counters.faults)
  fromCounters('gpusvm_gpu_invalidations', 'MMU notifier callbacks run', (d) => d.counters.invalidations)
  fromCounters('gpusvm_gpu_migrated_to_device_bytes', 'Bytes placed in VRAM', (d) => d.counters.migratedToDevice)
  fromCounters('gpusvm_gpu_migrated_to_system_bytes', 'Bytes moved out of VRAM to system memory', (d) => d.counters.migratedToSystem)
  fromCounters('gpusvm_gpu_evictions', 'Allocations evicted under VRAM pressure', (d) => d.counters.evictions)
  fromCounters('gpusvm_gpu_vram_used_bytes', 'VRAM allocated', (d) => d.pagemap.buddy.usedBytes)
  fromCounters('gpusvm_gpu_vram_backed_bytes', 'VRAM bytes actually backed by host memory', (d) => d.pagemap.vram.backedBytes)
  app.get('/healthz', async () => ({ ok: true, gpu: opts.gpu }))
  app.get('/readyz', async (_req, reply) => {
    const ready = opts.device() !== null
    return await reply.code(ready ? 200 : 503).send({ ready, gpu: opts.gpu })
  })
  app.get('/metrics', async (_req, reply) => await reply.type(registry.contentType).send(await registry.metrics()))
  return app
}

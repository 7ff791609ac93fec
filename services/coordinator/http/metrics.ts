/**
 * Prometheus metrics of the coordinator (/metrics): process defaults plus
 * gauges and counters read from the coordinator's state at scrape time, and
 * HTTP requests by route and status (bounded labels: the route pattern, not
 * the URL).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Coordinator } from '../coordinator.js'
import { PAGE_SIZE } from '../../../shared/units.js'

/** A counter that follows a monotonic value read at scrape time. */
function followingCounter (registry: Registry, name: string, help: string, read: () => number): void {
  let last = 0
  const c: Counter = new Counter({
    name,
    help,
    registers: [registry],
    collect () {
      const now = read()
      if (now > last) c.inc(now - last)
      last = Math.max(last, now)
    }
  })
}

export function coordinatorMetrics (c: Coordinator): { registry: Registry, http: Counter<'route' | 'method' | 'status'> } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'gpusvm_coordinator_' })
  new Gauge({ name: 'gpusvm_processes', help: 'Simulated processes', registers: [registry], collect () { this.set(c.processCount) } })
  new Gauge({ name: 'gpusvm_vms', help: 'GPU VMs', registers: [registry], collect () { this.set(c.vms.size) } })
  new Gauge({
    name: 'gpusvm_gpus',
    help: 'GPUs by state',
    labelNames: ['state'],
    registers: [registry],
    collect () {
      const counts = { online: 0, offline: 0, lost: 0 }
      for (const e of c.gpus.entries.values()) counts[e.state]++
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n)
    }
  })
  new Gauge({ name: 'gpusvm_system_memory_used_bytes', help: 'System memory in use by processes', registers: [registry], collect () { this.set(c.phys.system.usedFrames * PAGE_SIZE) } })
  new Gauge({ name: 'gpusvm_migrations_in_flight', help: 'migrate_vma sessions open', registers: [registry], collect () { this.set(c.mmctx.sessions.size) } })
  followingCounter(registry, 'gpusvm_invalidation_callbacks_total', 'MMU notifier callbacks delivered to GPUs', () => c.stats.invalidations)
  followingCounter(registry, 'gpusvm_gpus_lost_total', 'GPUs declared lost', () => c.stats.gpusLost)
  followingCounter(registry, 'gpusvm_malformed_messages_total', 'WebSocket messages rejected as malformed', () => c.malformedMessages)
  const http = new Counter({ name: 'gpusvm_http_requests_total', help: 'HTTP requests', labelNames: ['route', 'method', 'status'] as const, registers: [registry] })
  return { registry, http }
}

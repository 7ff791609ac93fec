/**
 * A scriptable stand-in for the GPUs behind the mm's GpuLinks seam: records
 * every invalidation, acknowledges at once (or after a delay, or never), and
 * answers migrate_to_ram and free_pages through hooks. Unit tests of the mm
 * core use it directly, without any transport.
 */
import type { GpuLinks, InvalidateEvent, MigrateToRamRequest } from '../../services/coordinator/mm/gpu-links.js'

export interface RecordedInvalidation { gpu: number, pid: number, events: InvalidateEvent[] }

export class FakeLinks implements GpuLinks {
  readonly invalidations: RecordedInvalidation[] = []
  readonly freed: Array<{ gpu: number, pfns: number[] }> = []
  readonly owners = new Map<number, number>()
  readonly lost = new Set<number>()
  /** Per GPU: 'ack' (default), a delay in ms, or 'never'. */
  readonly behaviour = new Map<number, 'ack' | 'never' | number>()
  onMigrateToRam: (gpu: number, req: MigrateToRamRequest) => Promise<{ retryAfterMs: number }> =
    async () => ({ retryAfterMs: 0 })

  onInvalidate: ((gpu: number, pid: number, events: InvalidateEvent[]) => void) | null = null

  async invalidate (gpu: number, pid: number, events: InvalidateEvent[]): Promise<void> {
    this.invalidations.push({ gpu, pid, events })
    this.onInvalidate?.(gpu, pid, events)
    const b = this.behaviour.get(gpu) ?? 'ack'
    if (b === 'never') return await new Promise<void>(() => {})
    if (typeof b === 'number') await new Promise((resolve) => setTimeout(resolve, b))
  }

  async migrateToRam (gpu: number, req: MigrateToRamRequest): Promise<{ retryAfterMs: number }> {
    return await this.onMigrateToRam(gpu, req)
  }

  async freeDevicePages (gpu: number, pfns: number[]): Promise<void> {
    this.freed.push({ gpu, pfns: [...pfns] })
  }

  ownerOf (gpu: number): number | null {
    return this.lost.has(gpu) ? null : this.owners.get(gpu) ?? gpu + 100
  }

  isLost (gpu: number): boolean {
    return this.lost.has(gpu)
  }

  eventsFor (gpu: number): InvalidateEvent[] {
    return this.invalidations.filter((r) => r.gpu === gpu).flatMap((r) => r.events)
  }
}

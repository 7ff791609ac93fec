/**
 * MMU interval notifiers of one process (mmu_interval_notifier).
 *
 * A GPU registers [start, end) spans it mirrors. Before any CPU page-table
 * change in a span, every overlapping notifier is invalidated and the change
 * waits until each GPU has acknowledged (synchronous invalidation). Sequence
 * numbers follow the kernel's contract: a notifier's seq is odd while an
 * invalidation is in flight and even otherwise; read_begin waits an in-flight
 * invalidation out and returns seq; read_retry(seq) tells whether one started
 * since. The GPU keeps its own copy, set by its callback (mmu_interval_set_seq)
 * to the value the seq will have when the invalidation ends.
 */
import type { GpuLinks, InvalidateEvent, MmuEvent } from './gpu-links.js'

export class Notifier {
  seq = 0
  active = 0
  removed = false
  private waiters: Array<() => void> = []

  constructor (readonly gpu: number, readonly id: number, readonly start: number, readonly end: number) {}

  /** mmu_interval_read_begin: waits out an invalidation in flight. */
  async readBegin (): Promise<number> {
    while (this.active > 0) {
      await new Promise<void>((resolve) => { this.waiters.push(resolve) })
    }
    return this.seq
  }

  /**
   * The value seq will have once no invalidation is in flight: what a GPU
   * that ran its own callback (see Notifiers.begin's `self`) must record.
   */
  settledSeq (): number {
    return this.active > 0 ? this.seq + 1 : this.seq
  }

  /** mmu_interval_read_retry */
  readRetry (seq: number): boolean {
    return this.seq !== seq
  }

  /** @internal */
  startInvalidate (): void {
    if (this.active++ === 0) this.seq++
  }

  /** @internal */
  endInvalidate (): void {
    if (--this.active === 0) {
      this.seq++
      const w = this.waiters
      this.waiters = []
      for (const wake of w) wake()
    }
  }
}

/** An invalidation in progress: the CPU PTE change goes between begin and end(). */
export class Invalidation {
  private ended = false

  constructor (readonly notifiers: readonly Notifier[]) {}

  end (): void {
    if (this.ended) return
    this.ended = true
    for (const n of this.notifiers) n.endInvalidate()
  }
}

export interface SelfInvalidated {
  gpu: number
  /** Notifier ids whose callback the requesting GPU runs itself, on the reply. */
  ids: readonly number[]
}

export class Notifiers {
  private readonly byKey = new Map<string, Notifier>()
  private list: Notifier[] = []
  /** Invalidation callbacks delivered (per notifier), for counters. */
  delivered = 0

  constructor (readonly pid: number, private readonly links: GpuLinks) {}

  get size (): number {
    return this.list.length
  }

  get all (): readonly Notifier[] {
    return this.list
  }

  /** mmu_interval_notifier_insert (idempotent for the same gpu and id). */
  insert (gpu: number, id: number, start: number, end: number): Notifier {
    const key = `${gpu}:${id}`
    const existing = this.byKey.get(key)
    if (existing !== undefined) return existing
    const n = new Notifier(gpu, id, start, end)
    this.byKey.set(key, n)
    this.list.push(n)
    return n
  }

  get (gpu: number, id: number): Notifier | undefined {
    return this.byKey.get(`${gpu}:${id}`)
  }

  /** mmu_interval_notifier_remove: no callbacks reach it afterwards. */
  remove (gpu: number, id: number): void {
    const key = `${gpu}:${id}`
    const n = this.byKey.get(key)
    if (n === undefined) return
    n.removed = true
    this.byKey.delete(key)
    this.list = this.list.filter((x) => x !== n)
  }

  removeGpu (gpu: number): void {
    for (const n of this.list) if (n.gpu === gpu) this.remove(gpu, n.id)
  }

  overlapping (start: number, end: number): Notifier[] {
    const out: Notifier[] = []
    for (const n of this.list) if (n.start < end && start < n.end) out.push(n)
    return out
  }

  /**
   * invalidate_range_start: marks every overlapping notifier in flight, runs
   * each GPU's callbacks and waits for all acknowledgements. The caller makes
   * its page-table change and then calls end(). Notifiers listed in `self`
   * are bumped but not messaged: their GPU already ran the callback locally
   * before asking for this change and learns the new seq from the reply.
   */
  async begin (start: number, end: number, event: MmuEvent, owner: number | null, self?: SelfInvalidated): Promise<Invalidation> {
    const targets = this.overlapping(start, end)
    for (const n of targets) n.startInvalidate()
    const inv = new Invalidation(targets)
    if (targets.length === 0) return inv
    const byGpu = new Map<number, InvalidateEvent[]>()
    for (const n of targets) {
      if (self !== undefined && self.gpu === n.gpu && self.ids.includes(n.id)) continue
      if (this.links.isLost(n.gpu)) continue
      let events = byGpu.get(n.gpu)
      if (events === undefined) {
        events = []
        byGpu.set(n.gpu, events)
      }
      events.push({
        notifier: n.id,
        start: Math.max(start, n.start),
        end: Math.min(end, n.end),
        event,
        owner,
        seq: n.seq + 1
      })
    }
    if (byGpu.size > 0) {
      const acks: Array<Promise<void>> = []
      for (const [gpu, events] of byGpu) {
        this.delivered += events.length
        acks.push(this.links.invalidate(gpu, this.pid, events))
      }
      await Promise.all(acks)
    }
    return inv
  }
}

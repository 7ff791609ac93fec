/**
 * A GPU asking the CPU side for a migration would receive a MIGRATE
 * invalidation for the window on its own notifiers, in the middle of its own
 * request. Instead it runs that callback itself first (zapping its ranges in
 * the window, in every VM of the process) and lists the notifiers in the
 * request; the coordinator bumps their sequence numbers without messaging
 * back and returns the values they settle at. Until then those notifiers'
 * read_retry reports a retry, as a concurrent invalidation would; if the
 * request fails their sequence becomes unknown (one forced retry).
 */
import type { GpuCounters } from '../../../shared/schemas/vm.js'
import type { GpuVm } from './gpu-vm.js'
import type { GpuNotifier } from './notifier.js'

export class SelfInvalidation {
  private readonly notifiers: GpuNotifier[] = []
  private open = true

  /** The callback for [start, end) in every VM of pid; `zap` false marks notifiers only (a new range). */
  static window (vms: Iterable<GpuVm>, pid: number, start: number, end: number, counters: GpuCounters): SelfInvalidation {
    const s = new SelfInvalidation()
    for (const vm of vms) {
      if (vm.pid !== pid) continue
      for (const n of vm.svm.notifiers) {
        if (n.end <= start || n.start >= end) continue
        const before = vm.invalidations
        vm.invalidate(n, start, end, 'migrate')
        counters.invalidations += vm.invalidations - before
        s.hold(n)
      }
    }
    return s
  }

  /** Only marks one notifier (find_or_insert of a new range: nothing mapped there yet). */
  static notifier (n: GpuNotifier): SelfInvalidation {
    const s = new SelfInvalidation()
    s.hold(n)
    return s
  }

  private hold (n: GpuNotifier): void {
    n.pendingSelf++
    this.notifiers.push(n)
  }

  get ids (): number[] {
    return this.notifiers.map((n) => n.id)
  }

  /** The reply's [id, seq, ...] pairs. */
  settle (seqs: readonly number[]): void {
    if (!this.open) return
    this.open = false
    for (const n of this.notifiers) {
      for (let k = 0; k + 1 < seqs.length; k += 2) if (seqs[k] === n.id) n.setSeq(seqs[k + 1] as number)
      n.pendingSelf--
    }
  }

  fail (): void {
    if (!this.open) return
    this.open = false
    for (const n of this.notifiers) {
      n.unknown = true
      n.pendingSelf--
    }
  }

  /** Runs the request, settling from its reply's selfSeqs. */
  async around<T extends { selfSeqs: readonly number[] }> (send: (ids: number[]) => Promise<T>): Promise<T> {
    try {
      const r = await send(this.ids)
      this.settle(r.selfSeqs)
      return r
    } catch (err) {
      this.fail()
      throw err
    }
  }
}

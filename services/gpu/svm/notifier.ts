/**
 * drm_gpusvm_notifier: a span (default 512 MiB, aligned) of the mirrored
 * address space registered with the CPU side as one MMU interval notifier,
 * holding the ranges inside it. `seq` is this GPU's copy of the notifier
 * sequence (mmu_interval_set_seq, from the invalidation callback).
 *
 * When this GPU asks for a migration it runs its own invalidation callback
 * before sending (pendingSelf) and learns the resulting seq from the reply;
 * until then read_retry reports a retry, as a concurrent invalidation would.
 * If that exchange fails the seq is unknown: the next read_retry adopts the
 * value it is given but still asks for one retry.
 */
import type { SvmRange } from './range.js'
import { firstEndingAfter } from '../../../shared/util/sorted.js'

export class GpuNotifier {
  seq = 0
  pendingSelf = 0
  unknown = false
  removed = false
  /** Ranges inside, sorted by start. */
  readonly ranges: SvmRange[] = []

  constructor (readonly id: number, readonly start: number, readonly end: number) {}

  /** mmu_interval_set_seq, from the invalidation callback. */
  setSeq (seq: number): void {
    if (seq > this.seq) this.seq = seq
  }

  /** mmu_interval_read_retry, called under the notifier lock. */
  readRetry (seq: number): boolean {
    if (this.pendingSelf > 0) return true
    if (this.unknown) {
      this.unknown = false
      this.seq = seq
      return true
    }
    return this.seq !== seq
  }

  /** Index of the first range with end > addr. */
  private lowerBound (addr: number): number {
    return firstEndingAfter(this.ranges, addr)
  }


  find (addr: number): SvmRange | undefined {
    const r = this.ranges[this.lowerBound(addr)]
    return r !== undefined && r.start <= addr ? r : undefined
  }

  overlapping (start: number, end: number): SvmRange[] {
    const out: SvmRange[] = []
    for (let i = this.lowerBound(start); i < this.ranges.length; i++) {
      const r = this.ranges[i] as SvmRange
      if (r.start >= end) break
      out.push(r)
    }
    return out
  }

  /** Inserts a range; false if it would overlap one already there. */
  insert (r: SvmRange): boolean {
    const i = this.lowerBound(r.start)
    const next = this.ranges[i]
    if (next !== undefined && next.start < r.end) return false
    this.ranges.splice(i, 0, r)
    return true
  }

  remove (r: SvmRange): void {
    const i = this.ranges.indexOf(r)
    if (i >= 0) this.ranges.splice(i, 1)
  }
}

/**
 * A small seeded PRNG (mulberry32): the in-memory transport's scheduler, the
 * soak workload and the property tests all derive from a seed so that a
 * failing run can be replayed exactly.
 */
export class Rng {
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    let t = (this.state = (this.state + 0x6D2B79F5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Integer in [lo, hi]. */
  int (lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  bool (p = 0.5): boolean {
    return this.next() < p
  }

  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from empty list')
    return items[Math.floor(this.next() * items.length)] as T
  }
}

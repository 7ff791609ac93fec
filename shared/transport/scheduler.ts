/**
 * The in-memory transport's delivery scheduler. With a seed it delays each
 * delivery by a pseudo-random number of virtual ticks and delivers one message
 * batch per macrotask, so deliveries on different connections interleave
 * differently per seed and a failing seed replays exactly. Order within one
 * connection direction is always kept (as TCP keeps it). Without a seed,
 * deliveries happen on the next microtask: the fast path for benchmarks.
 */
import { Rng } from '../util/rng.js'

export interface SchedulerOptions {
  /** Seed for delays; omit for immediate delivery. */
  seed?: number
  /** Largest random delay in virtual ticks (default 8). */
  maxDelay?: number
}

interface Item { at: number, seq: number, run: () => void }

export class Scheduler {
  private readonly rng: Rng | null
  private readonly maxDelay: number
  private readonly lastAt = new Map<string, number>()
  private readonly heap: Item[] = []
  private now = 0
  private seq = 0
  private pumping = false
  /** Extra ticks per channel prefix, for injected latency. */
  private readonly extraDelay = new Map<string, number>()

  constructor (opts: SchedulerOptions = {}) {
    this.rng = opts.seed === undefined ? null : new Rng(opts.seed)
    this.maxDelay = opts.maxDelay ?? 8
  }

  get seeded (): boolean {
    return this.rng !== null
  }

  /** Adds `ticks` of delay to every delivery on channels starting with `prefix`. */
  setExtraDelay (prefix: string, ticks: number): void {
    if (ticks <= 0) this.extraDelay.delete(prefix)
    else this.extraDelay.set(prefix, ticks)
  }

  schedule (channel: string, run: () => void): void {
    // The microtask fast path only while nothing waits in the heap: a delivery
    // still queued there (an injected delay just removed) must not be overtaken.
    if (this.rng === null && this.extraDelay.size === 0 && this.heap.length === 0) {
      queueMicrotask(run)
      return
    }
    let delay = this.rng === null ? 0 : this.rng.int(0, this.maxDelay)
    for (const [prefix, ticks] of this.extraDelay) if (channel.startsWith(prefix)) delay += ticks
    const at = Math.max(this.now + delay, this.lastAt.get(channel) ?? 0)
    this.lastAt.set(channel, at)
    this.push({ at, seq: this.seq++, run })
    if (!this.pumping) {
      this.pumping = true
      setImmediate(() => this.pump())
    }
  }

  private pump (): void {
    const item = this.pop()
    if (item === undefined) {
      this.pumping = false
      return
    }
    this.now = Math.max(this.now, item.at)
    setImmediate(() => this.pump())
    item.run()
  }

  private push (item: Item): void {
    const h = this.heap
    h.push(item)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(h[i] as Item, h[p] as Item)) break
      ;[h[i], h[p]] = [h[p] as Item, h[i] as Item]
      i = p
    }
  }

  private pop (): Item | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0] as Item
    const last = h.pop() as Item
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && less(h[l] as Item, h[m] as Item)) m = l
        if (r < h.length && less(h[r] as Item, h[m] as Item)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m] as Item, h[i] as Item]
        i = m
      }
    }
    return top
  }
}

function less (a: Item, b: Item): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

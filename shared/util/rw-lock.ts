/**
 * An asynchronous reader-writer lock with writer preference, the shape of the
 * kernel's mmap_lock: VMA changes take it for writing, faults and
 * hmm_range_fault for reading. JavaScript runs one task at a time, so the
 * lock only matters across awaits; holders must never await a peer that could
 * need this lock (DESIGN.md principle 2).
 */
import { withDeadline } from './deadline.js'

type Waiter = { write: boolean, grant: () => void }

export class RwLock {
  private readers = 0
  private writer = false
  private readonly queue: Waiter[] = []

  get idle (): boolean {
    return this.readers === 0 && !this.writer && this.queue.length === 0
  }

  async read<T> (fn: () => Promise<T> | T, deadlineMs = Infinity): Promise<T> {
    await this.acquire(false, deadlineMs)
    try {
      return await fn()
    } finally {
      this.release(false)
    }
  }

  async write<T> (fn: () => Promise<T> | T, deadlineMs = Infinity): Promise<T> {
    await this.acquire(true, deadlineMs)
    try {
      return await fn()
    } finally {
      this.release(true)
    }
  }

  private acquire (write: boolean, deadlineMs: number): Promise<void> {
    if (write ? (!this.writer && this.readers === 0 && this.queue.length === 0) : (!this.writer && this.queue.length === 0)) {
      if (write) this.writer = true
      else this.readers++
      return Promise.resolve()
    }
    let waiter!: Waiter
    const granted = new Promise<void>((resolve) => {
      waiter = { write, grant: resolve }
      this.queue.push(waiter)
    })
    if (!Number.isFinite(deadlineMs)) return granted
    return withDeadline(granted, deadlineMs, 'mmap lock').catch((err: unknown) => {
      const i = this.queue.indexOf(waiter)
      if (i >= 0) {
        this.queue.splice(i, 1)
        this.drain()
      } else {
        // Granted just as the deadline fired: hand it back.
        this.release(write)
      }
      throw err
    })
  }

  private release (write: boolean): void {
    if (write) this.writer = false
    else this.readers--
    this.drain()
  }

  private drain (): void {
    while (this.queue.length > 0) {
      const next = this.queue[0] as Waiter
      if (next.write) {
        if (this.readers === 0 && !this.writer) {
          this.queue.shift()
          this.writer = true
          next.grant()
        }
        return
      }
      if (this.writer) return
      this.queue.shift()
      this.readers++
      next.grant()
    }
  }
}

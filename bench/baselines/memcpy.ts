/**
 * Baseline copy throughput: `Buffer.copy` of one chunk size from a large
 * source pool into an equally large destination pool, walking both from
 * start to end (every page of both is touched once before timing, so no
 * first-touch page faults are measured).
 */
export class MemcpyProbe {
  readonly src: Buffer
  readonly dst: Buffer
  /** Bytes per second of each trial, by chunk size. */
  readonly trials = new Map<number, number[]>()

  constructor (readonly poolBytes: number) {
    this.src = Buffer.alloc(poolBytes)
    this.dst = Buffer.alloc(poolBytes)
    for (let i = 0; i < poolBytes; i += 4096) this.src[i] = i & 0xff
    this.dst.fill(1)
  }

  /** Copies `bytes` (a multiple of chunkBytes, wrapping around the pool); bytes per second. */
  trial (chunkBytes: number, bytes: number): number {
    const per = Math.floor(this.poolBytes / chunkBytes) * chunkBytes
    let done = 0
    let off = 0
    const t0 = performance.now()
    while (done < bytes) {
      this.src.copy(this.dst, off, off, off + chunkBytes)
      done += chunkBytes
      off += chunkBytes
      if (off >= per) off = 0
    }
    const s = (performance.now() - t0) / 1000
    if (this.dst[4096] !== this.src[4096]) throw new Error('memcpy baseline: copy did not land')
    const rate = done / s
    const list = this.trials.get(chunkBytes) ?? []
    list.push(rate)
    this.trials.set(chunkBytes, list)
    return rate
  }
}

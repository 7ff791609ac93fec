/**
 * Binary payloads travel beside the JSON control header as a list of chunks
 * (page-sized views of system memory or VRAM, never base64). Over WebSocket
 * the chunks arrive as one contiguous view; over the in-memory transport they
 * arrive as the sender's own views, uncopied. Readers use these helpers so
 * they never care which.
 */
export interface Payload {
  readonly length: number
  readonly chunks: readonly Uint8Array[]
}

export function payloadOf (chunks: readonly Uint8Array[]): Payload {
  let length = 0
  for (const c of chunks) length += c.byteLength
  return { length, chunks }
}

/** Copies `length` bytes starting at `offset` of the payload into `dst` at `dstOffset`. */
export function copyFromPayload (p: Payload, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
  if (offset < 0 || length < 0 || offset + length > p.length) throw new RangeError('payload read out of bounds')
  let skip = offset
  let remaining = length
  let out = dstOffset
  for (const c of p.chunks) {
    if (remaining === 0) break
    if (skip >= c.byteLength) { skip -= c.byteLength; continue }
    const n = Math.min(c.byteLength - skip, remaining)
    dst.set(c.subarray(skip, skip + n), out)
    out += n
    remaining -= n
    skip = 0
  }
}

/** A view of bytes [offset, offset + length): zero-copy when they lie in one chunk. */
export function slicePayload (p: Payload, offset: number, length: number): Uint8Array {
  let skip = offset
  for (const c of p.chunks) {
    if (skip < c.byteLength) {
      if (skip + length <= c.byteLength) return c.subarray(skip, skip + length)
      break
    }
    skip -= c.byteLength
  }
  const out = new Uint8Array(length)
  copyFromPayload(p, offset, out, 0, length)
  return out
}

/** Gathers chunks into `dst` starting at `offset`; returns the end offset. */
export function gatherInto (chunks: readonly Uint8Array[], dst: Uint8Array, offset: number): number {
  let o = offset
  for (const c of chunks) {
    dst.set(c, o)
    o += c.byteLength
  }
  return o
}

/** Reads a payload front to back without rescanning its chunks (linear in pages, not quadratic). */
export class PayloadCursor {
  private chunk = 0
  private offset = 0

  constructor (private readonly p: Payload) {}

  /** Copies the next `length` bytes into dst at dstOffset. */
  read (dst: Uint8Array, dstOffset: number, length: number): void {
    let out = dstOffset
    let remaining = length
    while (remaining > 0) {
      const c = this.p.chunks[this.chunk]
      if (c === undefined) throw new RangeError('payload read past its end')
      const n = Math.min(c.byteLength - this.offset, remaining)
      dst.set(n === c.byteLength ? c : c.subarray(this.offset, this.offset + n), out)
      out += n
      remaining -= n
      this.offset += n
      if (this.offset === c.byteLength) {
        this.chunk++
        this.offset = 0
      }
    }
  }
}

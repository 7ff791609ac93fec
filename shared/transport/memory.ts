/**
 * In-process transport: a pair of connected endpoints whose deliveries go
 * through a Scheduler. Headers are serialised to JSON and parsed back, exactly
 * as on the wire, so schema validation and any serialisation bug behave as
 * they do between processes. Page-data chunks are passed by reference (the
 * one-copy path that makes in-process migration run near memcpy speed); with
 * `checkChunks` each chunk is fingerprinted at send and verified at delivery,
 * which catches a sender that breaks the immutability contract. With
 * `serialize: false` headers are handed over as objects (the fast in-process
 * path: each side must treat what it sent or received as read-only).
 */
import type { Connection, ConnectionEvents, InMessage, OutMessage } from './types.js'
import { payloadOf } from './payload.js'
import { consumed } from './ws.js'
import type { Scheduler } from './scheduler.js'

export interface MemoryPairOptions {
  /** Copy chunks at send and compare at delivery (tests). */
  checkChunks?: boolean
  /** Round-trip headers through JSON as the wire would (default true). */
  serialize?: boolean
}

const noopHandlers: ConnectionEvents = { message: () => {}, malformed: () => {}, close: () => {} }

class MemoryEndpoint implements Connection {
  peer!: MemoryEndpoint
  private handlers: ConnectionEvents = noopHandlers
  private isClosed = false

  constructor (
    readonly label: string,
    private readonly channel: string,
    private readonly scheduler: Scheduler,
    private readonly opts: MemoryPairOptions
  ) {}

  get closed (): boolean {
    return this.isClosed
  }

  setHandlers (handlers: ConnectionEvents): void {
    this.handlers = handlers
  }

  send (batch: readonly OutMessage[]): boolean {
    if (this.isClosed) {
      consumed(batch)
      return false
    }
    const serialize = this.opts.serialize !== false
    const json = serialize ? JSON.stringify(batch.map((m) => m.env)) : ''
    const envs = serialize ? null : batch.map((m) => m.env)
    const datas = batch.map((m) => (m.data !== undefined && m.data.length > 0 ? m.data : null))
    const snapshots = this.opts.checkChunks === true ? datas.map((d) => d?.map((c) => c.slice())) : null
    const peer = this.peer
    this.scheduler.schedule(this.channel, () => {
      if (peer.isClosed) {
        consumed(batch)
        return
      }
      const headers = envs ?? JSON.parse(json) as unknown[]
      const inbound: InMessage[] = headers.map((env, i) => {
        const d = datas[i]
        if (d === null || d === undefined) return { env, data: null }
        const snap = snapshots?.[i]
        if (snap !== undefined && snap !== null) {
          d.forEach((c, j) => {
            if (Buffer.compare(c, snap[j] as Uint8Array) !== 0) {
              throw new Error(`chunk ${j} of a message on ${this.label} changed between send and delivery`)
            }
          })
        }
        return { env, data: payloadOf(d) }
      })
      try {
        peer.handlers.message(inbound)
      } finally {
        consumed(batch) // the peer handled the batch (synchronously) and copied what it keeps
      }
    })
    return true
  }

  /** Delivers a raw, possibly hostile, frame to the peer (tests). */
  injectRaw (deliver: (h: ConnectionEvents) => void): void {
    const peer = this.peer
    this.scheduler.schedule(this.channel, () => { if (!peer.isClosed) deliver(peer.handlers) })
  }

  close (reason = 'closed'): void {
    if (this.isClosed) return
    this.isClosed = true
    const peer = this.peer
    this.handlers.close(reason)
    // The peer learns after everything already in flight, as with a TCP FIN.
    this.scheduler.schedule(this.channel, () => {
      if (peer.isClosed) return
      peer.isClosed = true
      peer.handlers.close(`peer closed: ${reason}`)
    })
  }
}

export type MemoryConnection = Connection & { injectRaw: (deliver: (h: ConnectionEvents) => void) => void }

/** Two connected endpoints: a (e.g. the GPU) and b (e.g. the coordinator). */
export function createMemoryPair (
  scheduler: Scheduler,
  labelA: string,
  labelB: string,
  opts: MemoryPairOptions = {}
): [MemoryConnection, MemoryConnection] {
  const a = new MemoryEndpoint(labelA, `${labelA}->${labelB}`, scheduler, opts)
  const b = new MemoryEndpoint(labelB, `${labelB}->${labelA}`, scheduler, opts)
  a.peer = b
  b.peer = a
  return [a, b]
}

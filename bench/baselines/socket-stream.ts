/**
 * Baseline stream throughput: one raw `net.Socket` on loopback to the peer's
 * sink, written in chunks of one size with backpressure honoured; a round is
 * timed from the first write to the sink's one-byte acknowledgement that all
 * bytes arrived.
 */
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'

export class SocketStreamProbe {
  /** Bytes per second of each trial, by chunk size. */
  readonly trials = new Map<number, number[]>()

  private constructor (private readonly sock: Socket) {}

  static async connect (port: number): Promise<SocketStreamProbe> {
    const sock = connect({ host: '127.0.0.1', port })
    await once(sock, 'connect')
    sock.setNoDelay(true)
    return new SocketStreamProbe(sock)
  }

  /** Streams `chunks` × `chunkBytes`; bytes per second. */
  async trial (chunkBytes: number, chunks: number): Promise<number> {
    const chunk = Buffer.alloc(chunkBytes, 0xa5)
    const total = chunkBytes * chunks
    const header = Buffer.alloc(8)
    header.writeBigUInt64LE(BigInt(total))
    const acked = new Promise<void>((resolve, reject) => {
      const onData = (): void => { cleanup(); resolve() }
      const onClose = (): void => { cleanup(); reject(new Error('stream peer closed the connection')) }
      const cleanup = (): void => { this.sock.off('data', onData); this.sock.off('close', onClose) }
      this.sock.once('data', onData)
      this.sock.once('close', onClose)
    })
    const t0 = performance.now()
    this.sock.write(header)
    for (let i = 0; i < chunks; i++) {
      if (!this.sock.write(chunk)) await once(this.sock, 'drain')
    }
    await acked
    const rate = total / ((performance.now() - t0) / 1000)
    const list = this.trials.get(chunkBytes) ?? []
    list.push(rate)
    this.trials.set(chunkBytes, list)
    return rate
  }

  close (): void {
    this.sock.destroy()
  }
}

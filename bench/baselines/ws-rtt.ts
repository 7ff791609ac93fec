/**
 * Baseline RTT: round trips of a 64-byte binary message over a raw `ws`
 * connection to the peer process, one at a time. The client uses the same
 * options as the emulator's GPU link (no compression, all-zero mask), so the
 * only difference from a fault's round trip is the work the emulator does.
 */
import WebSocket from 'ws'
import { percentiles, type Percentiles } from '../stats.js'

export const RTT_MESSAGE_BYTES = 64

export class WsRttProbe {
  /** p50/p99 of each trial, in trial order. */
  readonly trials: Percentiles[] = []

  private constructor (private readonly ws: WebSocket) {}

  static async connect (port: number): Promise<WsRttProbe> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, generateMask: (mask: Buffer) => { mask.fill(0) } })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    ws.binaryType = 'nodebuffer'
    const probe = new WsRttProbe(ws)
    // Warm-up (both ends' JIT): the first few thousand round trips run up to 3× slower.
    await probe.roundTrips(5000)
    return probe
  }

  /** `count` sequential round trips; each one's time in µs. */
  async roundTrips (count: number): Promise<number[]> {
    const msg = Buffer.alloc(RTT_MESSAGE_BYTES, 0x5a)
    const out: number[] = new Array(count)
    await new Promise<void>((resolve, reject) => {
      let i = 0
      let t0 = 0
      const onMessage = (data: Buffer): void => {
        out[i] = (performance.now() - t0) * 1000
        if (data.length !== RTT_MESSAGE_BYTES) {
          cleanup()
          reject(new Error(`echo of ${data.length} bytes, expected ${RTT_MESSAGE_BYTES}`))
          return
        }
        if (++i === count) {
          cleanup()
          resolve()
          return
        }
        t0 = performance.now()
        this.ws.send(msg, { binary: true })
      }
      const onClose = (): void => { cleanup(); reject(new Error('RTT peer closed the connection')) }
      const cleanup = (): void => {
        this.ws.off('message', onMessage)
        this.ws.off('close', onClose)
      }
      this.ws.on('message', onMessage)
      this.ws.on('close', onClose)
      t0 = performance.now()
      this.ws.send(msg, { binary: true })
    })
    return out
  }

  /** One trial of `count` round trips (after a short warm-up), recorded. */
  async trial (count: number): Promise<Percentiles> {
    await this.roundTrips(Math.min(100, count))
    const p = percentiles(await this.roundTrips(count))
    this.trials.push(p)
    return p
  }

  close (): void {
    this.ws.close()
  }
}

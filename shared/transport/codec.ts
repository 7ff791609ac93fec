/**
 * Wire format of one WebSocket binary frame:
 *
 *   [u32 LE header length][header: UTF-8 JSON array of envelopes][payload]
 *
 * An envelope that carries data has `$b: [offset, length]` naming its slice
 * of the payload. Page data is never base64 inside JSON. Decoding is
 * defensive: a hostile frame yields an error string, never an exception.
 */
import type { InMessage, OutMessage } from './types.js'
import { payloadOf } from './payload.js'

export const MAX_HEADER_BYTES = 32 * 1024 * 1024

export function encodeFrame (batch: readonly OutMessage[]): Buffer {
  const envs: object[] = new Array(batch.length)
  let payloadBytes = 0
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i] as OutMessage
    if (m.data !== undefined && m.data.length > 0) {
      let len = 0
      for (const c of m.data) len += c.byteLength
      envs[i] = { ...m.env, $b: [payloadBytes, len] }
      payloadBytes += len
    } else {
      envs[i] = m.env
    }
  }
  const json = JSON.stringify(envs)
  const headerBytes = Buffer.byteLength(json, 'utf8')
  const frame = Buffer.allocUnsafe(4 + headerBytes + payloadBytes)
  frame.writeUInt32LE(headerBytes, 0)
  frame.write(json, 4, headerBytes, 'utf8')
  let o = 4 + headerBytes
  for (const m of batch) {
    if (m.data === undefined) continue
    for (const c of m.data) {
      frame.set(c, o)
      o += c.byteLength
    }
  }
  return frame
}

export type DecodeResult = { ok: true, batch: InMessage[] } | { ok: false, reason: string }

export function decodeFrame (frame: Uint8Array): DecodeResult {
  if (frame.byteLength < 4) return { ok: false, reason: 'frame shorter than its length prefix' }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const headerLen = view.getUint32(0, true)
  if (headerLen > MAX_HEADER_BYTES || 4 + headerLen > frame.byteLength) {
    return { ok: false, reason: `header length ${headerLen} exceeds frame` }
  }
  let envs: unknown
  try {
    const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
    envs = JSON.parse(buf.toString('utf8', 4, 4 + headerLen))
  } catch {
    return { ok: false, reason: 'header is not JSON' }
  }
  if (!Array.isArray(envs)) return { ok: false, reason: 'header is not an array of envelopes' }
  const payloadStart = 4 + headerLen
  const payloadLen = frame.byteLength - payloadStart
  const batch: InMessage[] = []
  for (const env of envs) {
    if (env !== null && typeof env === 'object' && '$b' in env) {
      const b = (env as { $b: unknown }).$b
      if (!Array.isArray(b) || b.length !== 2 || !Number.isSafeInteger(b[0]) || !Number.isSafeInteger(b[1]) ||
          b[0] < 0 || b[1] < 0 || b[0] + b[1] > payloadLen) {
        return { ok: false, reason: 'envelope payload slice out of bounds' }
      }
      delete (env as { $b?: unknown }).$b
      const view = frame.subarray(payloadStart + (b[0] as number), payloadStart + (b[0] as number) + (b[1] as number))
      batch.push({ env, data: payloadOf([view]) })
    } else {
      batch.push({ env, data: null })
    }
  }
  return { ok: true, batch }
}

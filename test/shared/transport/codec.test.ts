/**
 * Frame codec: [u32 LE header length][JSON array of envelopes][payload].
 * Round trips (property), then hostile frames, which must decode to
 * { ok: false } and never throw. Seeded (FC_SEED) and replayable.
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { decodeFrame, encodeFrame, MAX_HEADER_BYTES } from '../../../shared/transport/codec.js'
import type { OutMessage } from '../../../shared/transport/types.js'
import { copyFromPayload } from '../../../shared/transport/payload.js'

const SEED = Number(process.env.FC_SEED ?? 0xc0dec)
const RUNS = Number(process.env.FC_RUNS ?? 300)

function holds (t: Test, name: string, prop: fc.IProperty<any>, numRuns = RUNS): void {
  const out = fc.check(prop, { seed: SEED, numRuns })
  t.notOk(out.failed, `${name} (seed ${SEED}, ${out.numRuns} runs)`, out.failed ? { counterexample: fc.defaultReportMessage(out), error: String(out.errorInstance) } : {})
}

/** A frame built by hand: header bytes as given, then the payload. */
function rawFrame (header: string | Buffer, payload: Buffer = Buffer.alloc(0), lengthOverride?: number): Buffer {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header
  const f = Buffer.alloc(4 + h.byteLength + payload.byteLength)
  f.writeUInt32LE(lengthOverride ?? h.byteLength, 0)
  h.copy(f, 4)
  payload.copy(f, 4 + h.byteLength)
  return f
}

function payloadBytes (p: { length: number, chunks: readonly Uint8Array[] }): Buffer {
  const out = Buffer.alloc(p.length)
  copyFromPayload(p, 0, out, 0, p.length)
  return out
}

const envArb = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '$b'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 })
const chunkArb = fc.uint8Array({ minLength: 0, maxLength: 300 })
const msgArb: fc.Arbitrary<OutMessage> = fc.record({
  env: envArb,
  data: fc.option(fc.array(chunkArb, { maxLength: 4 }), { nil: undefined })
})

function checkRoundTrip (batch: readonly OutMessage[], frame: Uint8Array): void {
  const d = decodeFrame(frame)
  assert.ok(d.ok, d.ok ? '' : d.reason)
  assert.equal(d.batch.length, batch.length)
  batch.forEach((m, i) => {
    const got = d.batch[i] as { env: unknown, data: { length: number, chunks: readonly Uint8Array[] } | null }
    assert.deepStrictEqual(got.env, JSON.parse(JSON.stringify(m.env)), `env ${i}`)
    if (m.data === undefined || m.data.length === 0) {
      assert.equal(got.data, null, `message ${i} had no data`)
    } else {
      assert.notEqual(got.data, null, `message ${i} had data`)
      const want = Buffer.concat(m.data.map((c) => Buffer.from(c)))
      assert.equal(got.data?.length, want.length)
      assert.ok(payloadBytes(got.data as { length: number, chunks: Uint8Array[] }).equals(want), `payload ${i}`)
    }
  })
}

t.test('round trips of batches with and without binary payloads (property)', async (t) => {
  holds(t, 'decode(encode(batch)) gives the batch back', fc.property(fc.array(msgArb, { maxLength: 8 }), (batch) => {
    checkRoundTrip(batch, encodeFrame(batch))
  }))
  holds(t, 'a frame that is a view at an offset of a larger buffer decodes the same', fc.property(
    fc.array(msgArb, { maxLength: 6 }), fc.nat(13), fc.nat(13),
    (batch, before, after) => {
      const frame = encodeFrame(batch)
      const big = Buffer.alloc(before + frame.byteLength + after, 0xee)
      frame.copy(big, before)
      checkRoundTrip(batch, big.subarray(before, before + frame.byteLength))
    }))
})

t.test('round-trip examples', async (t) => {
  const empty = decodeFrame(encodeFrame([]))
  t.same(empty, { ok: true, batch: [] }, 'an empty batch')

  const a = new Uint8Array([1, 2, 3])
  const b = new Uint8Array([4, 5])
  const frame = encodeFrame([
    { env: { t: 'q', id: 1 }, data: [a, b] },
    { env: { t: 'n' } },
    { env: { t: 'r', id: 2 }, data: [new Uint8Array([9])] },
    { env: { t: 'r', id: 3 }, data: [] }
  ])
  const d = decodeFrame(frame)
  t.equal(d.ok, true)
  if (!d.ok) return
  t.same(d.batch.map((m) => m.env), [{ t: 'q', id: 1 }, { t: 'n' }, { t: 'r', id: 2 }, { t: 'r', id: 3 }], 'no $b left in the envelopes')
  t.same([...payloadBytes(d.batch[0]?.data as never)], [1, 2, 3, 4, 5])
  t.same([...payloadBytes(d.batch[2]?.data as never)], [9])
  t.equal(d.batch[1]?.data, null)
  t.equal(d.batch[3]?.data, null, 'an empty chunk list is no data')
  // The header names each message's slice.
  const hlen = frame.readUInt32LE(0)
  t.same(JSON.parse(frame.subarray(4, 4 + hlen).toString('utf8')), [
    { t: 'q', id: 1, $b: [0, 5] }, { t: 'n' }, { t: 'r', id: 2, $b: [5, 1] }, { t: 'r', id: 3 }
  ])
  t.equal(frame.byteLength, 4 + hlen + 6, 'payloads follow the header back to back')
})

function rejects (t: Test, frame: Uint8Array, what: string): void {
  let r: ReturnType<typeof decodeFrame> | undefined
  t.doesNotThrow(() => { r = decodeFrame(frame) }, `${what}: does not throw`)
  t.equal(r?.ok, false, `${what}: rejected`)
  if (r !== undefined && !r.ok) t.type(r.reason, 'string', `${what}: has a reason`)
}

t.test('hostile frames decode to { ok: false } and never throw', async (t) => {
  for (let n = 0; n < 4; n++) rejects(t, new Uint8Array(n), `${n}-byte frame`)
  rejects(t, Buffer.from([0xff, 0xff]), 'two bytes')

  rejects(t, rawFrame('[]', Buffer.alloc(0), 3), 'header length 3 > 2 bytes present')
  rejects(t, rawFrame('[]', Buffer.alloc(0), 100), 'header length beyond the frame')
  rejects(t, rawFrame('[]', Buffer.alloc(0), 0xffffffff), 'header length 2^32-1')
  rejects(t, rawFrame(Buffer.alloc(0), Buffer.alloc(16), MAX_HEADER_BYTES + 1), 'header length above MAX_HEADER_BYTES')
  const lenOnly = Buffer.alloc(4)
  lenOnly.writeUInt32LE(1, 0)
  rejects(t, lenOnly, 'length prefix only')

  rejects(t, rawFrame(''), 'empty header')
  rejects(t, rawFrame('[{"t":"q",'), 'truncated JSON')
  rejects(t, rawFrame('not json'), 'plain text header')
  rejects(t, rawFrame(Buffer.from([0xc3, 0x28, 0xff, 0xfe])), 'invalid UTF-8 header')
  rejects(t, rawFrame('[1,2]garbage'), 'JSON followed by garbage')

  for (const h of ['{}', '{"t":"q","id":1}', '1', '"[]"', 'null', 'true']) rejects(t, rawFrame(h), `header ${h} is not an array`)

  const payload = Buffer.from([1, 2, 3, 4, 5])
  const slices: Array<[string, string]> = [
    ['[0, 6]', 'slice past the payload end'],
    ['[5, 1]', 'slice starting at the end'],
    ['[6, 0]', 'empty slice beyond the end'],
    ['[-1, 2]', 'negative offset'],
    ['[0, -1]', 'negative length'],
    ['[0.5, 1]', 'non-integer offset'],
    ['[0, 1.5]', 'non-integer length'],
    ['["0", "1"]', 'string bounds'],
    ['[0]', 'one bound'],
    ['[0, 1, 2]', 'three bounds'],
    ['{"0": 0, "1": 1}', 'object instead of array'],
    ['null', 'null slice'],
    ['[1e300, 1]', 'huge offset'],
    ['[9007199254740992, 0]', 'offset beyond safe integers'],
    ['[9007199254740991, 9007199254740991]', 'sum overflows safe integers'],
    ['[0, null]', 'null length']
  ]
  for (const [b, what] of slices) rejects(t, rawFrame(`[{"t":"r","id":1,"$b":${b}}]`, payload), `$b ${b}: ${what}`)
  // One bad slice spoils the whole frame, even after good envelopes.
  rejects(t, rawFrame('[{"t":"r","id":1,"$b":[0,5]},{"t":"r","id":2,"$b":[3,3]}]', payload), 'second envelope out of bounds')

  // Accepted edge cases: exact bounds, non-object envelopes (the RPC layer rejects those).
  const exact = decodeFrame(rawFrame('[{"t":"r","id":1,"$b":[0,5]},{"t":"r","id":2,"$b":[5,0]}]', payload))
  t.equal(exact.ok, true, 'slices ending exactly at the payload end are accepted')
  if (exact.ok) {
    t.same([...payloadBytes(exact.batch[0]?.data as never)], [1, 2, 3, 4, 5])
    t.equal(exact.batch[1]?.data?.length, 0)
  }
  const odd = decodeFrame(rawFrame('[1,"x",null,[],{"$c":1}]'))
  t.equal(odd.ok, true, 'non-object envelopes are passed up for the RPC layer to reject')
  if (odd.ok) t.same(odd.batch, [{ env: 1, data: null }, { env: 'x', data: null }, { env: null, data: null }, { env: [], data: null }, { env: { $c: 1 }, data: null }])
})

t.test('arbitrary bytes and mutated frames never throw (property)', async (t) => {
  holds(t, 'random bytes', fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    const r = decodeFrame(bytes)
    assert.equal(typeof r.ok, 'boolean')
  }), 1000)
  holds(t, 'random bytes behind a plausible length prefix', fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(80), (bytes, len) => {
    const f = Buffer.alloc(4 + bytes.byteLength)
    f.writeUInt32LE(len, 0)
    f.set(bytes, 4)
    const r = decodeFrame(f)
    if (len > bytes.byteLength) assert.equal(r.ok, false, 'header length beyond the frame')
  }), 1000)
  holds(t, 'truncated or corrupted valid frames', fc.property(
    fc.array(msgArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
    (batch, cut, flips) => {
      const frame = encodeFrame(batch)
      const truncated = frame.subarray(0, cut % (frame.byteLength + 1))
      const r1 = decodeFrame(truncated)
      if (truncated.byteLength < frame.byteLength && truncated.byteLength < 4 + frame.readUInt32LE(0)) {
        assert.equal(r1.ok, false, 'a frame cut inside its header is rejected')
      }
      const corrupt = Buffer.from(frame)
      for (const [at, v] of flips) corrupt[at % corrupt.byteLength] = v
      const r2 = decodeFrame(corrupt)
      if (r2.ok) {
        // Whatever decoded must stay inside the frame.
        for (const m of r2.batch) {
          if (m.data !== null) for (const c of m.data.chunks) assert.ok(c.buffer === corrupt.buffer && c.byteOffset + c.byteLength <= corrupt.byteOffset + corrupt.byteLength)
        }
      }
    }), 500)
})

/**
 * GPU VM commands (DESIGN.md §2 "GPU VMs"): the REST bodies, and the same
 * shapes forwarded to the GPU process over its control connection. exec's
 * byte data is base64 over REST and binary on the wire.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Access, Address, AtomicMode, Bool, Closed, Count, Id, Length, Location, PreferredLocation } from './common.js'

export const MadviseBody = Closed({
  addr: Address,
  length: Length,
  preferredLocation: Type.Optional(PreferredLocation),
  atomic: Type.Optional(AtomicMode)
})
export type MadviseBody = Static<typeof MadviseBody>

export const AttributeRun = Closed({ addr: Address, length: Length, preferredLocation: PreferredLocation, atomic: AtomicMode })
export type AttributeRun = Static<typeof AttributeRun>

export const PrefetchBody = Closed({
  addr: Address,
  length: Length,
  location: Type.Union([Type.Literal('device'), Type.Literal('system'), Closed({ gpu: Id })])
})
export type PrefetchBody = Static<typeof PrefetchBody>

export const PrefetchResult = Closed({ migratedBytes: Count })

export const FaultBody = Closed({ addr: Address, access: Access })
export type FaultBody = Static<typeof FaultBody>

export const FaultResult = Closed({
  range: Closed({ start: Address, end: Address }),
  location: Location,
  migrated: Bool
})
export type FaultResult = Static<typeof FaultResult>

/** Extension: several faults at once, with service times (fault pipelining, benchmarks). */
export const FaultBatchBody = Closed({
  faults: Type.Array(FaultBody, { minItems: 1, maxItems: 65536 }),
  concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 }))
})
export type FaultBatchBody = Static<typeof FaultBatchBody>

export const FaultBatchResult = Closed({
  results: Type.Array(Type.Union([
    Closed({ ok: Type.Literal(true), range: Closed({ start: Address, end: Address }), location: Location, migrated: Bool, latencyUs: Type.Number() }),
    Closed({ ok: Type.Literal(false), code: Type.String(), message: Type.String(), latencyUs: Type.Number() })
  ])),
  elapsedUs: Type.Number()
})
export type FaultBatchResult = Static<typeof FaultBatchResult>

export const RangeFlags = Closed({
  migrateDevmem: Bool,
  unmapped: Bool,
  partialUnmap: Bool,
  hasDevmemPages: Bool,
  hasDmaMapping: Bool
})

export const RangeInfo = Closed({
  start: Address,
  end: Address,
  location: Location,
  bound: Bool,
  flags: RangeFlags
})
export type RangeInfo = Static<typeof RangeInfo>

const U32 = Type.Integer({ minimum: 0, maximum: 0xffffffff })
const Byte = Type.Integer({ minimum: 0, maximum: 255 })
/** A read returns its bytes in the reply: 64 MiB at most. */
export const MAX_READ_LENGTH = 64 * 1024 * 1024
/** fill, copy and checksum stream through the GPU: up to 1 GiB. */
export const MAX_OP_LENGTH = 1024 * 1024 * 1024
const ReadLength = Type.Integer({ minimum: 1, maximum: MAX_READ_LENGTH })
const OpLength = Type.Integer({ minimum: 1, maximum: MAX_OP_LENGTH })

/** exec ops other than read/write: the same over REST and on the wire. */
const CommonOps = [
  Closed({ op: Type.Literal('fill'), addr: Address, length: OpLength, byte: Byte }),
  Closed({ op: Type.Literal('read_u32'), addr: Address }),
  Closed({ op: Type.Literal('write_u32'), addr: Address, value: U32 }),
  Closed({ op: Type.Literal('atomic_add'), addr: Address, value: U32 }),
  Closed({ op: Type.Literal('copy'), src: Address, dst: Address, length: OpLength }),
  Closed({ op: Type.Literal('checksum'), addr: Address, length: OpLength })
] as const
const ReadOp = Closed({ op: Type.Literal('read'), addr: Address, length: ReadLength })

/** exec ops as REST clients write them: write data is base64. */
export const ExecOp = Type.Union([
  ReadOp,
  Closed({ op: Type.Literal('write'), addr: Address, data: Type.String({ contentEncoding: 'base64', minLength: 1 }) }),
  ...CommonOps
])
export type ExecOp = Static<typeof ExecOp>

export const ExecBody = Closed({ ops: Type.Array(ExecOp, { minItems: 1, maxItems: 4096 }) })
export type ExecBody = Static<typeof ExecBody>

export const ExecStats = Closed({ faults: Count, migratedToDevice: Count, migratedToSystem: Count, p2pBytes: Count })
export type ExecStats = Static<typeof ExecStats>

/** exec ops on the wire: write data is a slice [at, at + length) of the binary payload. */
export const WireExecOp = Type.Union([
  ReadOp,
  Closed({ op: Type.Literal('write'), addr: Address, at: Count, length: ReadLength }),
  ...CommonOps
])
export type WireExecOp = Static<typeof WireExecOp>

/** Per op result on the wire: read data is a slice of the reply payload. */
export const WireExecResult = Type.Union([
  Closed({ at: Count, length: Count }),
  Closed({ value: U32 }),
  Closed({ old: U32 }),
  Closed({ sha256: Type.String() }),
  Closed({})
])
export type WireExecResult = Static<typeof WireExecResult>

export const WireExecReply = Closed({
  results: Type.Array(WireExecResult),
  stats: ExecStats,
  error: Type.Optional(Closed({ code: Type.String(), message: Type.String(), opIndex: Count }))
})
export type WireExecReply = Static<typeof WireExecReply>

export const GpuCounters = Closed({
  faults: Count,
  invalidations: Count,
  migratedToDevice: Count,
  migratedToSystem: Count,
  p2pBytes: Count,
  evictions: Count,
  migrations: Closed({ systemToDevice: Count, deviceToSystem: Count, peerDirect: Count, peerViaSystem: Count })
})
export type GpuCounters = Static<typeof GpuCounters>

export const GpuInfo = Closed({
  vram: Closed({ total: Count, used: Count, free: Count, largestFree: Count }),
  pagemap: Closed({ id: Count, refs: Count, state: Type.Union([Type.Literal('active'), Type.Literal('inactive'), Type.Literal('destroyed')]) }),
  shrinker: Closed({ count: Count }),
  counters: GpuCounters
})
export type GpuInfo = Static<typeof GpuInfo>

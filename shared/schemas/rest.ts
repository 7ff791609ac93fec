/**
 * REST request and response bodies of the coordinator's front door
 * (DESIGN.md §2). Path ids and query addresses arrive as strings: ids are
 * decimal, addresses and lengths decimal or 0x hex, all checked here and
 * converted by the route (values at or beyond 2^48 are rejected there).
 */
import { Type, type Static } from '@sinclair/typebox'
import { Address, Bool, Closed, Id, Length, Location, Prot } from './common.js'

export const IdParam = Type.String({ pattern: '^[0-9]{1,9}$', description: 'decimal id' })
export const NumberString = Type.String({ pattern: '^(0[xX][0-9a-fA-F]{1,13}|[0-9]{1,16})$', description: 'decimal or 0x hex' })

export const PidParams = Closed({ pid: IdParam })
export const VmParams = Closed({ vm: IdParam })
export const GpuParams = Closed({ gpu: IdParam })

export const AddrQuery = Closed({ addr: NumberString })
export const SpanQuery = Closed({ addr: NumberString, length: NumberString })

export const NoBody = Type.Optional(Closed({}))

export const PidReply = Closed({ pid: Id })
export const AddrReply = Closed({ addr: Address })

export const MmapBody = Closed({
  length: Length,
  addr: Type.Optional(Address),
  prot: Type.Optional(Prot),
  shared: Type.Optional(Bool)
})
export type MmapBody = Static<typeof MmapBody>

export const SpanBody = Closed({ addr: Address, length: Length })

export const MremapBody = Closed({
  addr: Address,
  oldLength: Length,
  newLength: Length,
  newAddr: Type.Optional(Address),
  dontUnmap: Type.Optional(Bool)
})

export const MprotectBody = Closed({ addr: Address, length: Length, prot: Prot })

export const ProcessInfo = Closed({
  pid: Id,
  vmas: Type.Array(Closed({ addr: Address, length: Length, prot: Prot, shared: Bool }))
})

export const ResidencyReply = Closed({
  runs: Type.Array(Closed({ addr: Address, length: Length, location: Location }))
})

export const SnapshotReply = Closed({
  runs: Type.Array(Closed({
    addr: Address,
    length: Length,
    access: Type.Union([Type.Literal('none'), Type.Literal('read'), Type.Literal('write')]),
    location: Location,
    inPlace: Bool
  }))
})

export const VmCreateBody = Closed({ gpu: Id, pid: Id })
export const VmReply = Closed({ vm: Id })

const GpuState = Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('lost')])
const Owner = Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])

export const TopologyReply = Closed({
  gpus: Type.Array(Closed({ id: Id, state: GpuState, owner: Owner, vram: Closed({ total: Type.Integer(), used: Type.Integer() }) })),
  links: Type.Array(Closed({ a: Id, b: Id, up: Bool, bandwidthGBps: Type.Number(), latencyUs: Type.Number() }))
})

export const OwnersReply = Type.Array(Closed({ owner: Type.Integer({ minimum: 1 }), gpus: Type.Array(Id) }))

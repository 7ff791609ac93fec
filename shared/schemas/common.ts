/**
 * Building blocks of every schema, REST and wire alike: addresses below
 * 2^48, positive lengths, the names of protections, locations, access kinds
 * and madvise attributes. Objects are closed (additionalProperties: false):
 * an unknown field is a malformed request.
 */
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox'

export const MAX_ADDR = 2 ** 48 - 1

export const Address = Type.Integer({ minimum: 0, maximum: MAX_ADDR, description: 'virtual address (below 2^48)' })
export const Length = Type.Integer({ minimum: 1, maximum: MAX_ADDR, description: 'length in bytes (positive)' })
export const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
export const Id = Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })
export const Bool = Type.Boolean()

export function Closed<T extends TProperties> (props: T, opts: Record<string, unknown> = {}): TObject<T> {
  return Type.Object(props, { additionalProperties: false, ...opts })
}

export const Prot = Type.Union([Type.Literal('rw'), Type.Literal('r'), Type.Literal('none')])
export type Prot = Static<typeof Prot>

export const Location = Type.String({ pattern: '^(unpopulated|system|gpu[0-9]+)$' })

export const Access = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('atomic')])
export type Access = Static<typeof Access>

export const AtomicMode = Type.Union([Type.Literal('undefined'), Type.Literal('device'), Type.Literal('global'), Type.Literal('cpu')])
export type AtomicMode = Static<typeof AtomicMode>

/** "device" (the VM's GPU), "system", or a specific GPU. */
export const PreferredLocation = Type.Union([
  Type.Literal('device'),
  Type.Literal('system'),
  Closed({ gpu: Id })
])
export type PreferredLocation = Static<typeof PreferredLocation>

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String()
}, { additionalProperties: true, $id: 'Error' })

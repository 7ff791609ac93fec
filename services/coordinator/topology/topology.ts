/**
 * The emulated machine: which GPUs exist, how much VRAM each has, and which
 * pairs share a fast interconnect. Read from a topology file or built from
 * --gpus/--vram (the default pairs gpu0-gpu1, gpu2-gpu3, ...).
 */
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { svmError } from '../../../shared/errors.js'
import { parseSize } from '../../../shared/units.js'
import { DEVICE_PFN_LIMIT, MAX_GPUS } from '../../../shared/svm/page-id.js'

export interface GpuSpec { id: number, vram: number }
export interface LinkSpec { a: number, b: number, bandwidthGBps: number, latencyUs: number }
export interface Topology { gpus: GpuSpec[], links: LinkSpec[] }

const TopologyFile = Type.Object({
  gpus: Type.Array(Type.Object({
    id: Type.Integer({ minimum: 0, maximum: MAX_GPUS - 1 }),
    vram: Type.Union([Type.String(), Type.Integer({ minimum: 0 })])
  }, { additionalProperties: false }), { minItems: 1 }),
  links: Type.Optional(Type.Array(Type.Object({
    a: Type.Integer({ minimum: 0 }),
    b: Type.Integer({ minimum: 0 }),
    bandwidthGBps: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    latencyUs: Type.Optional(Type.Number({ minimum: 0 }))
  }, { additionalProperties: false })))
}, { additionalProperties: false })
type TopologyFile = Static<typeof TopologyFile>
const checkFile = TypeCompiler.Compile(TopologyFile)

export const DEFAULT_LINK = { bandwidthGBps: 64, latencyUs: 1 }
export const MAX_VRAM = DEVICE_PFN_LIMIT * 4096

export function validateVram (bytes: number): number {
  if (bytes < 2 * 1024 * 1024 || bytes % (2 * 1024 * 1024) !== 0 || bytes > MAX_VRAM) {
    throw svmError('EINVAL', `VRAM size must be a multiple of 2MiB between 2MiB and 64GiB (got ${bytes})`)
  }
  return bytes
}

/** N GPUs with equal VRAM, linked in pairs (0-1, 2-3, ...). */
export function defaultTopology (gpus = 4, vram = 256 * 1024 * 1024): Topology {
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > MAX_GPUS) throw svmError('EINVAL', `GPU count must be 1..${MAX_GPUS}`)
  validateVram(vram)
  const t: Topology = { gpus: [], links: [] }
  for (let i = 0; i < gpus; i++) t.gpus.push({ id: i, vram })
  for (let i = 0; i + 1 < gpus; i += 2) t.links.push({ a: i, b: i + 1, ...DEFAULT_LINK })
  return t
}

export function parseTopology (json: unknown): Topology {
  if (!checkFile.Check(json)) {
    const e = checkFile.Errors(json).First()
    throw svmError('EINVAL', `topology: ${e?.path ?? '/'} ${e?.message ?? 'invalid'}`)
  }
  const f = json as TopologyFile
  const ids = new Set<number>()
  const gpus = f.gpus.map((g) => {
    if (ids.has(g.id)) throw svmError('EINVAL', `topology: gpu ${g.id} listed twice`)
    ids.add(g.id)
    return { id: g.id, vram: validateVram(parseSize(g.vram)) }
  })
  const links = (f.links ?? []).map((l) => {
    if (!ids.has(l.a) || !ids.has(l.b) || l.a === l.b) throw svmError('EINVAL', `topology: link ${l.a}-${l.b} names an unknown GPU or itself`)
    return { a: l.a, b: l.b, bandwidthGBps: l.bandwidthGBps ?? DEFAULT_LINK.bandwidthGBps, latencyUs: l.latencyUs ?? DEFAULT_LINK.latencyUs }
  })
  return { gpus: gpus.sort((x, y) => x.id - y.id), links }
}

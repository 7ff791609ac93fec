/** The topology of a run: a file (--topology / GPUSVM_TOPOLOGY) or --gpus/--vram. */
import { readFileSync } from 'node:fs'
import { parseSize } from '../../../shared/units.js'
import { defaultTopology, parseTopology, type Topology } from './topology.js'
import { type Flags, intSetting, setting } from '../../../shared/config/args.js'

export const DEFAULT_GPUS = 4
export const DEFAULT_VRAM = '256MiB'

export function loadTopology (flags: Flags): Topology {
  const file = setting(flags, 'topology', 'GPUSVM_TOPOLOGY')
  if (file !== undefined && file !== '') {
    return parseTopology(JSON.parse(readFileSync(file, 'utf8')) as unknown)
  }
  const gpus = intSetting(flags, 'gpus', 'GPUSVM_GPUS', DEFAULT_GPUS)
  const vram = parseSize(setting(flags, 'vram', 'GPUSVM_VRAM') ?? DEFAULT_VRAM)
  return defaultTopology(gpus, vram)
}

/**
 * Physical pages as the CPU side sees them: system frames (real bytes,
 * SystemMemory) and each GPU's device-private pages (bytes live in that GPU's
 * process; here only who maps them). Mapping and unmapping go through this so
 * the reverse maps, and freeing, stay right; a device page that loses its
 * last mapping is reported so its GPU frees it (folio_free).
 */
import { DEVICE, SYSTEM, kindOf } from './pte.js'
import { RmapSpace } from './rmap.js'
import { SystemMemory } from './system-memory.js'
import { deviceGpu, devicePfn } from '../../../shared/svm/page-id.js'

/** Device pages whose last mapping went away, by GPU: to be freed there. */
export class FreedDevicePages {
  readonly byGpu = new Map<number, number[]>()

  add (gpu: number, pfn: number): void {
    let l = this.byGpu.get(gpu)
    if (l === undefined) {
      l = []
      this.byGpu.set(gpu, l)
    }
    l.push(pfn)
  }

  get empty (): boolean {
    return this.byGpu.size === 0
  }
}

export class PhysicalMemory {
  readonly system: SystemMemory
  private readonly devices = new Map<number, RmapSpace>()

  constructor (systemLimitBytes?: number) {
    this.system = new SystemMemory(systemLimitBytes)
  }

  deviceRmap (gpu: number): RmapSpace {
    let r = this.devices.get(gpu)
    if (r === undefined) {
      r = new RmapSpace()
      this.devices.set(gpu, r)
    }
    return r
  }

  /** Records that (pid, vpn) maps the page a SYSTEM or DEVICE pte names. */
  map (pte: number, pfn: number, pid: number, vpn: number): void {
    const kind = kindOf(pte)
    if (kind === SYSTEM) {
      this.system.rmap.add(pfn, pid, vpn)
    } else if (kind === DEVICE) {
      const r = this.deviceRmap(deviceGpu(pfn))
      const p = devicePfn(pfn)
      r.ensure(p + 1)
      r.add(p, pid, vpn)
    }
  }

  /** Drops that mapping; frees a system frame nobody holds, reports a device page nobody maps. */
  unmap (pte: number, pfn: number, pid: number, vpn: number, freed: FreedDevicePages): void {
    const kind = kindOf(pte)
    if (kind === SYSTEM) {
      this.system.rmap.remove(pfn, pid, vpn)
      this.system.releaseIfUnused(pfn)
    } else if (kind === DEVICE) {
      const gpu = deviceGpu(pfn)
      if (this.deviceRmap(gpu).remove(devicePfn(pfn), pid, vpn) === 0) freed.add(gpu, devicePfn(pfn))
    }
  }

  /** Moves a mapping to another virtual page of the same process (mremap). */
  relocate (pte: number, pfn: number, pid: number, oldVpn: number, newVpn: number): void {
    const kind = kindOf(pte)
    if (kind === SYSTEM) this.system.rmap.relocate(pfn, pid, oldVpn, newVpn)
    else if (kind === DEVICE) this.deviceRmap(deviceGpu(pfn)).relocate(devicePfn(pfn), pid, oldVpn, newVpn)
  }

  /** How many PTEs map the page. */
  mapcount (pte: number, pfn: number): number {
    const kind = kindOf(pte)
    if (kind === SYSTEM) return this.system.rmap.count(pfn)
    if (kind === DEVICE) {
      const r = this.deviceRmap(deviceGpu(pfn))
      const p = devicePfn(pfn)
      return p < r.capacity ? r.count(p) : 0
    }
    return 0
  }

  /** Every (pid, vpn) mapping a device page, flattened pairs. */
  deviceMappings (gpu: number, pfn: number): number[] {
    const r = this.deviceRmap(gpu)
    return pfn < r.capacity ? r.mappings(pfn) : []
  }

  metadataBytes (): number {
    let b = this.system.metadataBytes()
    for (const r of this.devices.values()) b += r.metadataBytes()
    return b
  }
}

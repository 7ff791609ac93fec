/**
 * Reverse map: for each physical page (a system frame, or a device page of
 * one GPU), which (process, virtual page) map it. The kernel walks anon_vma
 * chains for this (try_to_migrate, remove_migration_ptes); we keep the first
 * mapping in typed arrays and spill the rest of a shared page (fork's COW, a
 * shared mapping) to a small map, so the common single-mapping case costs
 * 13 bytes per page and no objects (a virtual page number below 2^36 is
 * kept as 32 low bits and 8 high bits).
 */

const BLOCK_SHIFT = 14
const BLOCK = 1 << BLOCK_SHIFT
const MASK = BLOCK - 1

export class RmapSpace {
  private mapcount: Uint32Array[] = []
  private firstPid: Int32Array[] = []
  private firstVpnLo: Uint32Array[] = []
  private firstVpnHi: Uint8Array[] = []
  /** Mappings beyond the first: flattened [pid, vpn, pid, vpn, ...]. */
  private readonly more = new Map<number, number[]>()

  constructor (capacity = 0) {
    this.ensure(capacity)
  }

  get capacity (): number {
    return this.mapcount.length * BLOCK
  }

  ensure (capacity: number): void {
    while (this.capacity < capacity) {
      this.mapcount.push(new Uint32Array(BLOCK))
      const pids = new Int32Array(BLOCK)
      pids.fill(-1)
      this.firstPid.push(pids)
      this.firstVpnLo.push(new Uint32Array(BLOCK))
      this.firstVpnHi.push(new Uint8Array(BLOCK))
    }
  }

  private vpnAt (b: number, i: number): number {
    return ((this.firstVpnHi[b] as Uint8Array)[i] as number) * 0x100000000 + ((this.firstVpnLo[b] as Uint32Array)[i] as number)
  }

  private setVpn (b: number, i: number, vpn: number): void {
    ;(this.firstVpnLo[b] as Uint32Array)[i] = vpn % 0x100000000
    ;(this.firstVpnHi[b] as Uint8Array)[i] = Math.floor(vpn / 0x100000000)
  }

  count (page: number): number {
    return (this.mapcount[page >>> BLOCK_SHIFT] as Uint32Array)[page & MASK] as number
  }

  add (page: number, pid: number, vpn: number): void {
    const b = page >>> BLOCK_SHIFT
    const i = page & MASK
    const counts = this.mapcount[b] as Uint32Array
    const pids = this.firstPid[b] as Int32Array
    if (pids[i] === -1) {
      pids[i] = pid
      this.setVpn(b, i, vpn)
    } else {
      let extra = this.more.get(page)
      if (extra === undefined) {
        extra = []
        this.more.set(page, extra)
      }
      extra.push(pid, vpn)
    }
    counts[i] = (counts[i] as number) + 1
  }

  /** Removes one mapping; returns the remaining map count. */
  remove (page: number, pid: number, vpn: number): number {
    const b = page >>> BLOCK_SHIFT
    const i = page & MASK
    const counts = this.mapcount[b] as Uint32Array
    const pids = this.firstPid[b] as Int32Array
    const extra = this.more.get(page)
    if (pids[i] === pid && this.vpnAt(b, i) === vpn) {
      if (extra !== undefined && extra.length > 0) {
        pids[i] = extra[0] as number
        this.setVpn(b, i, extra[1] as number)
        extra.splice(0, 2)
        if (extra.length === 0) this.more.delete(page)
      } else {
        pids[i] = -1
        this.setVpn(b, i, 0)
      }
    } else {
      let found = false
      if (extra !== undefined) {
        for (let k = 0; k < extra.length; k += 2) {
          if (extra[k] === pid && extra[k + 1] === vpn) {
            extra.splice(k, 2)
            if (extra.length === 0) this.more.delete(page)
            found = true
            break
          }
        }
      }
      if (!found) throw new Error(`rmap: page ${page} is not mapped at pid ${pid} vpn ${vpn}`)
    }
    const left = (counts[i] as number) - 1
    counts[i] = left
    return left
  }

  /** Moves one mapping to another virtual page (mremap). */
  relocate (page: number, pid: number, oldVpn: number, newVpn: number): void {
    const b = page >>> BLOCK_SHIFT
    const i = page & MASK
    const pids = this.firstPid[b] as Int32Array
    if (pids[i] === pid && this.vpnAt(b, i) === oldVpn) {
      this.setVpn(b, i, newVpn)
      return
    }
    const extra = this.more.get(page)
    if (extra !== undefined) {
      for (let k = 0; k < extra.length; k += 2) {
        if (extra[k] === pid && extra[k + 1] === oldVpn) {
          extra[k + 1] = newVpn
          return
        }
      }
    }
    throw new Error(`rmap: page ${page} is not mapped at pid ${pid} vpn ${oldVpn}`)
  }

  /** The first mapping of the page as [pid, vpn] (reused array: read it at once). */
  first (page: number): readonly number[] {
    const b = page >>> BLOCK_SHIFT
    const i = page & MASK
    this.scratch[0] = (this.firstPid[b] as Int32Array)[i] as number
    this.scratch[1] = this.vpnAt(b, i)
    return this.scratch
  }

  private readonly scratch: number[] = [0, 0]

  /** Every mapping of the page, as [pid, vpn] pairs flattened. */
  mappings (page: number): number[] {
    const b = page >>> BLOCK_SHIFT
    const i = page & MASK
    const pid = (this.firstPid[b] as Int32Array)[i] as number
    if (pid === -1) return []
    const out = [pid, this.vpnAt(b, i)]
    const extra = this.more.get(page)
    if (extra !== undefined) out.push(...extra)
    return out
  }

  /** Bytes of metadata held, for the G5 figure. */
  metadataBytes (): number {
    let extra = 0
    for (const v of this.more.values()) extra += 64 + v.length * 8
    return this.mapcount.length * BLOCK * (4 + 4 + 4 + 1) + extra
  }
}

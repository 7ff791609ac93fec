/**
 * A GPU VM's page table: what the GPU's MMU walks on every access. Sparse
 * 512-entry leaves of encoded PTEs (page-addr.ts), 8 bytes a page. Entries
 * are written by bind (after the pages were checked valid under the notifier
 * lock) and zapped by invalidation; an access with no entry is a GPU fault.
 */
const LEAF = 512

export class GpuPageTable {
  private readonly leaves = new Map<number, Float64Array>()
  private mapped = 0

  get mappedPages (): number {
    return this.mapped
  }

  get (vpn: number): number {
    const leaf = this.leaves.get(Math.floor(vpn / LEAF))
    return leaf === undefined ? 0 : leaf[vpn % LEAF] as number
  }

  set (vpn: number, entry: number): void {
    const key = Math.floor(vpn / LEAF)
    let leaf = this.leaves.get(key)
    if (leaf === undefined) {
      if (entry === 0) return
      leaf = new Float64Array(LEAF)
      this.leaves.set(key, leaf)
    }
    const i = vpn % LEAF
    const was = leaf[i] as number
    leaf[i] = entry
    if (was === 0 && entry !== 0) this.mapped++
    else if (was !== 0 && entry === 0) this.mapped--
  }

  /** Zaps [startVpn, endVpn); returns how many entries were present. Visits present leaves only. */
  zap (startVpn: number, endVpn: number): number {
    if (endVpn <= startVpn) return 0
    let n = 0
    const first = Math.floor(startVpn / LEAF)
    const last = Math.floor((endVpn - 1) / LEAF)
    const visit = (key: number): void => {
      const leaf = this.leaves.get(key)
      if (leaf === undefined) return
      const lo = Math.max(startVpn, key * LEAF) - key * LEAF
      const hi = Math.min(endVpn, (key + 1) * LEAF) - key * LEAF
      for (let i = lo; i < hi; i++) {
        if (leaf[i] !== 0) {
          leaf[i] = 0
          n++
        }
      }
    }
    if (last - first < this.leaves.size) {
      for (let key = first; key <= last; key++) visit(key)
    } else {
      for (const key of [...this.leaves.keys()]) if (key >= first && key <= last) visit(key)
    }
    this.mapped -= n
    return n
  }

  clear (): void {
    this.leaves.clear()
    this.mapped = 0
  }
}

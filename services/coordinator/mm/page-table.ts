/**
 * A process's CPU page table: sparse 512-entry leaves (one per 2 MiB of
 * virtual space) of a kind byte and a 32-bit pfn per page, 5 bytes a page,
 * allocated on first use and dropped when empty. Leaves are keyed by
 * vpn >> 9; iteration visits present leaves only, so a terabyte-sized sparse
 * mapping costs what is populated.
 */
import { NONE } from './pte.js'

export const LEAF_SHIFT = 9
export const LEAF_PAGES = 1 << LEAF_SHIFT
const LEAF_MASK = LEAF_PAGES - 1

export interface Leaf {
  readonly kind: Uint8Array
  readonly pfn: Uint32Array
  used: number
}

export class PageTable {
  private readonly leaves = new Map<number, Leaf>()
  private present = 0
  /** The last leaf looked up: loops over a range mostly stay in one leaf. */
  private lastKey = -1
  private lastLeaf: Leaf | undefined

  private leaf (key: number): Leaf | undefined {
    if (key !== this.lastKey) {
      this.lastKey = key
      this.lastLeaf = this.leaves.get(key)
    }
    return this.lastLeaf
  }

  get presentPages (): number {
    return this.present
  }

  get leafCount (): number {
    return this.leaves.size
  }

  /** The kind byte at vpn (NONE when absent). */
  pte (vpn: number): number {
    const leaf = this.leaf(Math.floor(vpn / LEAF_PAGES))
    return leaf === undefined ? NONE : leaf.kind[vpn & LEAF_MASK] as number
  }

  pfn (vpn: number): number {
    const leaf = this.leaf(Math.floor(vpn / LEAF_PAGES))
    return leaf === undefined ? 0 : leaf.pfn[vpn & LEAF_MASK] as number
  }

  set (vpn: number, pte: number, pfn: number): void {
    const key = Math.floor(vpn / LEAF_PAGES)
    let leaf = this.leaf(key)
    const i = vpn & LEAF_MASK
    if (leaf === undefined) {
      if (pte === NONE) return
      leaf = { kind: new Uint8Array(LEAF_PAGES), pfn: new Uint32Array(LEAF_PAGES), used: 0 }
      this.leaves.set(key, leaf)
      this.lastKey = key
      this.lastLeaf = leaf
    }
    const was = leaf.kind[i] as number
    leaf.kind[i] = pte
    leaf.pfn[i] = pte === NONE ? 0 : pfn
    if (was === NONE && pte !== NONE) {
      leaf.used++
      this.present++
    } else if (was !== NONE && pte === NONE) {
      leaf.used--
      this.present--
      if (leaf.used === 0) {
        this.leaves.delete(key)
        if (this.lastKey === key) this.lastLeaf = undefined
      }
    }
  }

  /** Changes only the kind byte of a present entry (e.g. dropping write). */
  setKind (vpn: number, pte: number): void {
    const leaf = this.leaf(Math.floor(vpn / LEAF_PAGES))
    if (leaf === undefined || leaf.kind[vpn & LEAF_MASK] === NONE) throw new Error(`setKind on an empty pte at vpn ${vpn}`)
    leaf.kind[vpn & LEAF_MASK] = pte
  }

  /**
   * Calls fn for every present entry with startVpn <= vpn < endVpn, in
   * ascending order. fn may change or clear the entry it is given.
   */
  forEachPresent (startVpn: number, endVpn: number, fn: (vpn: number, pte: number, pfn: number) => void): void {
    if (endVpn <= startVpn) return
    const first = Math.floor(startVpn / LEAF_PAGES)
    const last = Math.floor((endVpn - 1) / LEAF_PAGES)
    let keys: number[]
    if (last - first + 1 <= this.leaves.size * 2) {
      keys = []
      for (let k = first; k <= last; k++) if (this.leaves.has(k)) keys.push(k)
    } else {
      keys = []
      for (const k of this.leaves.keys()) if (k >= first && k <= last) keys.push(k)
      keys.sort((a, b) => a - b)
    }
    for (const key of keys) {
      const leaf = this.leaves.get(key)
      if (leaf === undefined) continue
      const base = key * LEAF_PAGES
      const lo = Math.max(startVpn, base) - base
      const hi = Math.min(endVpn, base + LEAF_PAGES) - base
      for (let i = lo; i < hi; i++) {
        const pte = leaf.kind[i] as number
        if (pte !== NONE) fn(base + i, pte, leaf.pfn[i] as number)
      }
    }
  }

  /** Bytes of bookkeeping, for the G5 figure (Map entry overhead estimated). */
  metadataBytes (): number {
    return this.leaves.size * (LEAF_PAGES * 5 + 96)
  }
}

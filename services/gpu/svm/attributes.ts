/**
 * Memory attributes a VM was given by madvise (xe's per-GPU-VMA attrs):
 * preferred location and atomic mode over spans of the mirrored address
 * space. Kept as sorted, non-overlapping non-default spans; everything else
 * has the defaults (preferred location: the VM's own device; atomic:
 * undefined), as xe's DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE and
 * DRM_XE_ATOMIC_UNDEFINED.
 */
import type { AtomicMode, PreferredLocation } from '../../../shared/schemas/common.js'

export interface Attrs { preferredLocation: PreferredLocation, atomic: AtomicMode }
interface Span extends Attrs { start: number, end: number }

export const DEFAULT_ATTRS: Readonly<Attrs> = { preferredLocation: 'device', atomic: 'undefined' }

function samePref (a: PreferredLocation, b: PreferredLocation): boolean {
  return typeof a === 'string' || typeof b === 'string' ? a === b : a.gpu === b.gpu
}

function same (a: Attrs, b: Attrs): boolean {
  return samePref(a.preferredLocation, b.preferredLocation) && a.atomic === b.atomic
}

function isDefault (a: Attrs): boolean {
  return same(a, DEFAULT_ATTRS)
}

export class Attributes {
  private spans: Span[] = []

  at (addr: number): Attrs {
    for (const s of this.spans) {
      if (s.start > addr) break
      if (addr < s.end) return { preferredLocation: s.preferredLocation, atomic: s.atomic }
    }
    return DEFAULT_ATTRS
  }

  /** The attribute span (a GPU VMA of equal attributes) holding addr. */
  spanAt (addr: number, limit: number): { start: number, end: number } {
    let lo = 0
    let hi = limit
    for (const s of this.spans) {
      if (s.end <= addr) { lo = Math.max(lo, s.end); continue }
      if (s.start > addr) { hi = Math.min(hi, s.start); break }
      return { start: s.start, end: s.end }
    }
    return { start: lo, end: hi }
  }

  /** Runs covering [start, end), defaults included. */
  runs (start: number, end: number): Array<Attrs & { addr: number, length: number }> {
    const out: Array<Attrs & { addr: number, length: number }> = []
    let at = start
    const push = (from: number, to: number, a: Attrs): void => {
      if (to <= from) return
      out.push({ addr: from, length: to - from, preferredLocation: a.preferredLocation, atomic: a.atomic })
    }
    for (const s of this.spans) {
      if (s.end <= start) continue
      if (s.start >= end) break
      push(at, Math.max(at, s.start), DEFAULT_ATTRS)
      push(Math.max(at, s.start), Math.min(end, s.end), s)
      at = Math.min(end, s.end)
    }
    push(at, end, DEFAULT_ATTRS)
    return out
  }

  /**
   * Applies a change to [start, end); returns the sub-spans whose effective
   * attributes actually changed (re-applying a value changes nothing).
   */
  apply (start: number, end: number, change: Partial<Attrs>): Array<{ start: number, end: number }> {
    const changed: Array<{ start: number, end: number }> = []
    const next: Span[] = []
    for (const r of this.runs(start, end)) {
      const updated: Attrs = {
        preferredLocation: change.preferredLocation ?? r.preferredLocation,
        atomic: change.atomic ?? r.atomic
      }
      if (!same(updated, r)) changed.push({ start: r.addr, end: r.addr + r.length })
      if (!isDefault(updated)) next.push({ start: r.addr, end: r.addr + r.length, ...updated })
    }
    if (changed.length === 0) return changed
    const kept: Span[] = []
    for (const s of this.spans) {
      if (s.end <= start || s.start >= end) { kept.push(s); continue }
      if (s.start < start) kept.push({ ...s, end: start })
      if (s.end > end) kept.push({ ...s, start: end })
    }
    this.spans = merge([...kept, ...next].sort((a, b) => a.start - b.start))
    return changed
  }

  /** Back to defaults over [start, end) (the GC after an unmap). */
  reset (start: number, end: number): void {
    this.apply(start, end, DEFAULT_ATTRS)
  }
}

function merge (spans: Span[]): Span[] {
  const out: Span[] = []
  for (const s of spans) {
    const last = out[out.length - 1]
    if (last !== undefined && last.end === s.start && same(last, s)) last.end = s.end
    else out.push({ ...s })
  }
  return out
}

/**
 * drm_gpusvm_range_chunk_size: the size of a new GPU SVM range. The largest
 * chunk (xe: 2M, 64K, 4K) whose aligned window around the fault address fits
 * inside the CPU VMA, the notifier and the GPU VMA wins, except that a chunk
 * larger than 4K is skipped when it would overlap an existing range, or when
 * it is at most check_pages_threshold (xe: 64K on discrete GPUs) and not
 * every page of it is already present for the CPU (the XXX workaround in
 * drm_gpusvm.c). No fit at all is -EINVAL.
 *
 * Shared so that the process holding the mm (which knows the VMA and the
 * pages) can run it for the GPU, which knows the ranges.
 */
import { SZ_2M, SZ_4K, SZ_64K, alignDown, alignUp } from '../units.js'

export const CHUNK_SIZES: readonly number[] = [SZ_2M, SZ_64K, SZ_4K]
export const CHECK_PAGES_THRESHOLD = SZ_64K

export interface ChunkQuery {
  addr: number
  vmaStart: number
  vmaEnd: number
  notifierStart: number
  notifierEnd: number
  gvaStart: number
  gvaEnd: number
  checkPagesThreshold: number
  chunkSizes?: readonly number[]
  overlapsRange: (start: number, end: number) => boolean
  allPagesPresent: (start: number, end: number) => boolean
}

export function selectChunk (q: ChunkQuery): { start: number, end: number } | null {
  const sizes = q.chunkSizes ?? CHUNK_SIZES
  for (const size of sizes) {
    const start = alignDown(q.addr, size)
    const end = alignUp(q.addr + 1, size)
    if (start < q.vmaStart || end > q.vmaEnd) continue
    if (start < q.notifierStart || end > q.notifierEnd) continue
    if (start < q.gvaStart || end > q.gvaEnd) continue
    if (end - start !== SZ_4K) {
      if (q.overlapsRange(start, end)) continue
      if (end - start <= q.checkPagesThreshold && !q.allPagesPresent(start, end)) continue
    }
    return { start, end }
  }
  return null
}

/** The span every candidate chunk lies in: ranges overlapping it are the ones to report. */
export function candidateWindow (addr: number, sizes: readonly number[] = CHUNK_SIZES): { start: number, end: number } {
  const max = Math.max(...sizes)
  return { start: alignDown(addr, max), end: alignUp(addr + 1, max) }
}

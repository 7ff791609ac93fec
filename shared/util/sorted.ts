/** Binary search over arrays of [start, end) spans sorted by start and disjoint. */
export interface Span { readonly start: number, readonly end: number }

/** Index of the first span with end > addr (spans.length if none). */
export function firstEndingAfter (spans: readonly Span[], addr: number): number {
  let lo = 0
  let hi = spans.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((spans[mid] as Span).end <= addr) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Order statistics for the benchmark: quantiles (linear interpolation
 * between closest ranks), the median of trial figures, and a compact summary.
 */

/** The q-quantile (0 ≤ q ≤ 1) of already sorted values. */
export function quantileSorted (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  const a = sorted[lo] as number
  const b = sorted[hi] as number
  return a + (b - a) * (pos - lo)
}

export function quantile (values: readonly number[], q: number): number {
  return quantileSorted([...values].sort((x, y) => x - y), q)
}

export function median (values: readonly number[]): number {
  return quantile(values, 0.5)
}

export interface Percentiles { p50: number, p99: number, min: number, max: number, n: number }

export function percentiles (values: readonly number[]): Percentiles {
  const s = [...values].sort((x, y) => x - y)
  return { p50: quantileSorted(s, 0.5), p99: quantileSorted(s, 0.99), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN, n: s.length }
}

/** Median and spread of one figure over the trials. */
export interface TrialSummary { median: number, min: number, max: number, trials: number[] }

export function summarize (trials: readonly number[]): TrialSummary {
  return { median: median(trials), min: Math.min(...trials), max: Math.max(...trials), trials: [...trials] }
}

/** Human-readable numbers for the bench table: sizes, rates, times, counts. */
import type { Unit } from './figures.js'

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let v = n
  let i = 0
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i] as string}`
}

export function formatValue (v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return String(v)
  switch (unit) {
    case 'us': return v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(1)} µs`
    case 'B/s': return v >= 1024 ** 3 ? `${(v / 1024 ** 3).toFixed(2)} GiB/s` : `${(v / 1024 ** 2).toFixed(0)} MiB/s`
    case 'faults/s': return `${(v / 1000).toFixed(1)} k/s`
    case 'B': return `${v.toFixed(1)} B`
  }
}

export function formatRatio (r: number): string {
  if (!Number.isFinite(r)) return String(r)
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)
}

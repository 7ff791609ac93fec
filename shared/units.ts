/**
 * Sizes and address arithmetic shared by every layer. Addresses are JS
 * numbers: user space is [0, 2^47) and every value stays an exact integer
 * far below 2^53.
 */
import { svmError } from './errors.js'

export const PAGE_SHIFT = 12
export const PAGE_SIZE = 4096
export const SZ_4K = 4096
export const SZ_64K = 64 * 1024
export const SZ_2M = 2 * 1024 * 1024
export const SZ_1G = 1024 * 1024 * 1024
/** Pages per 2 MiB, the largest chunk and buddy block. */
export const PAGES_PER_2M = SZ_2M / PAGE_SIZE

/** Addresses on the wire stay below this (DESIGN.md §2). */
export const ADDRESS_LIMIT = 2 ** 48
/** User space, and what a GPU VM mirrors: [0, 2^47). */
export const USER_SPACE_END = 2 ** 47

export function isPageAligned (n: number): boolean {
  return n % PAGE_SIZE === 0
}

export function alignDown (n: number, a: number): number {
  return n - (n % a)
}

export function alignUp (n: number, a: number): number {
  const r = n % a
  return r === 0 ? n : n + (a - r)
}

export function pageOf (addr: number): number {
  return Math.floor(addr / PAGE_SIZE)
}

const SIZE_RE = /^(\d+)\s*(B|KiB|MiB|GiB|TiB|K|M|G|T|KB|MB|GB|TB)?$/i
const SIZE_MULT: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4
}

/** Parses "256MiB", "1G", "4096" (binary units throughout). */
export function parseSize (input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw svmError('EINVAL', `invalid size ${input}`)
    return input
  }
  const m = SIZE_RE.exec(input.trim())
  if (m === null) throw svmError('EINVAL', `invalid size "${input}" (use e.g. 256MiB)`)
  const mult = SIZE_MULT[(m[2] ?? 'b').toLowerCase()] ?? 1
  return Number(m[1]) * mult
}

export function formatSize (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && v % 1024 === 0 && i < units.length - 1) { v /= 1024; i++ }
  return `${v}${units[i]}`
}

/**
 * CPU page-table entry encoding. A PTE is a kind byte plus a 32-bit pfn:
 *
 *   NONE       never populated (or zapped)
 *   ZERO       the shared zero page, read-only (anonymous read fault)
 *   SYSTEM     a frame of system memory            pfn = frame
 *   DEVICE     a device-private page (in VRAM)      pfn = device page id
 *   MIGRATION  locked by a migration in flight      pfn = migration session id
 *   POISON     the page lived on a GPU that was lost: access fails with EIO
 *
 * The high bit of the kind byte is the write permission of the PTE (not of
 * the VMA): cleared for copy-on-write sharing after fork and by mprotect.
 */
export const NONE = 0
export const ZERO = 1
export const SYSTEM = 2
export const DEVICE = 3
export const MIGRATION = 4
export const POISON = 5

export const PTE_WRITE = 0x80
export const KIND_MASK = 0x0f

export function kindOf (pte: number): number {
  return pte & KIND_MASK
}

export function isWritable (pte: number): boolean {
  return (pte & PTE_WRITE) !== 0
}

export function withWrite (kind: number, writable: boolean): number {
  return writable ? kind | PTE_WRITE : kind
}

/**
 * How a GPU addresses a page it maps (drm_pagemap_addr and the GPU PTE).
 *
 * dma entry of a range page:  id * 4 + proto       (-1: none)
 *   proto SYSTEM: id is a system frame (reached by DMA through the coordinator)
 *   proto DRIVER: id is a device page id of this GPU (its own VRAM)
 *   proto P2P:    id is a device page id of a peer GPU (over the interconnect)
 *
 * GPU PTE: id * 32 + atomic * 16 + proto * 4 + writable * 2 + 1  (0: none)
 */
export const PROTO_SYSTEM = 0
export const PROTO_DRIVER = 1
export const PROTO_P2P = 2

export const DMA_NONE = -1

export function dmaEncode (id: number, proto: number): number {
  return id * 4 + proto
}

export function dmaId (a: number): number {
  return Math.floor(a / 4)
}

export function dmaProto (a: number): number {
  return a % 4
}

export function pteEncode (id: number, proto: number, writable: boolean, atomic: boolean): number {
  return id * 32 + (atomic ? 16 : 0) + proto * 4 + (writable ? 2 : 0) + 1
}

export function pteValid (e: number): boolean {
  return e !== 0
}

export function pteWritable (e: number): boolean {
  return (e & 2) !== 0
}

export function pteAtomic (e: number): boolean {
  return (e & 16) !== 0
}

export function pteProto (e: number): number {
  return (e >> 2) & 3
}

export function pteId (e: number): number {
  return Math.floor(e / 32)
}

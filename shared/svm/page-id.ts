/**
 * Names of physical pages shared by coordinator and GPUs.
 *
 * A system page is its frame number. A device-private page is
 * `gpu * 2^24 + pfn`: the owning GPU and the page frame within its VRAM
 * (so a GPU has at most 64 GiB of VRAM and ids stay below 2^32).
 *
 * hmm_range_fault results travel as one number per page:
 *   -1 not valid, else id * 4 + (writable ? 2 : 0) + (device ? 1 : 0)
 */
export const DEVICE_PFN_BITS = 24
export const DEVICE_PFN_LIMIT = 2 ** DEVICE_PFN_BITS
export const MAX_GPUS = 256

export function deviceId (gpu: number, pfn: number): number {
  return gpu * DEVICE_PFN_LIMIT + pfn
}

export function deviceGpu (id: number): number {
  return Math.floor(id / DEVICE_PFN_LIMIT)
}

export function devicePfn (id: number): number {
  return id % DEVICE_PFN_LIMIT
}

export const HMM_INVALID = -1

export function hmmEncode (id: number, writable: boolean, device: boolean): number {
  return id * 4 + (writable ? 2 : 0) + (device ? 1 : 0)
}

export function hmmIsValid (e: number): boolean {
  return e >= 0
}

export function hmmIsDevice (e: number): boolean {
  return (e & 1) === 1
}

export function hmmIsWritable (e: number): boolean {
  return (e & 2) === 2
}

export function hmmId (e: number): number {
  return Math.floor(e / 4)
}

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

/**
 * hmm results travel run-length encoded: [first, count, first, count, ...].
 * Within a run of valid entries each next page id is one more (the entry
 * grows by 4); a run of invalid entries repeats -1. A 2 MiB range of one
 * allocation, or of frames handed out in order, is a single run.
 */
export function hmmRuns (entries: ArrayLike<number>): number[] {
  const out: number[] = []
  let i = 0
  while (i < entries.length) {
    const first = entries[i] as number
    const step = first < 0 ? 0 : 4
    let j = i + 1
    while (j < entries.length && entries[j] === first + (j - i) * step) j++
    out.push(first, j - i)
    i = j
  }
  return out
}

/** Expands hmmRuns back to one entry per page; null if the runs do not cover exactly n pages. */
export function hmmExpand (runs: ArrayLike<number>, n: number): number[] | null {
  if (runs.length % 2 !== 0) return null
  const out: number[] = new Array(n)
  let at = 0
  for (let k = 0; k < runs.length; k += 2) {
    const first = runs[k] as number
    const count = runs[k + 1] as number
    if (!Number.isSafeInteger(count) || count < 1 || at + count > n) return null
    const step = first < 0 ? 0 : 4
    for (let i = 0; i < count; i++) out[at++] = first + i * step
  }
  return at === n ? out : null
}

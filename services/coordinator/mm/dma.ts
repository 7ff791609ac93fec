/**
 * DMA by a GPU into system memory: reads and writes of frames it holds a
 * mapping for (from hmm_range_fault), described as segments
 * [frame, offset, length]. The coordinator checks each frame is live and the
 * segment inside it (an IOMMU would fault otherwise); it relies on
 * invalidation for the rest, as the kernel does: a GPU never uses a frame
 * after acknowledging the invalidation that unmaps it, and per-connection
 * FIFO order puts its earlier DMA ahead of that acknowledgement.
 */
import { svmError } from '../../../shared/errors.js'
import { PAGE_SIZE } from '../../../shared/units.js'
import type { Payload } from '../../../shared/transport/payload.js'
import { PayloadCursor } from '../../../shared/transport/payload.js'
import type { SystemMemory } from './system-memory.js'
import { ZERO_FRAME } from './system-memory.js'

function checkSegments (system: SystemMemory, segs: readonly number[], write: boolean): number {
  if (segs.length % 3 !== 0) throw svmError('EINVAL', 'dma: segments come in [frame, offset, length] triples')
  let total = 0
  for (let k = 0; k < segs.length; k += 3) {
    const frame = segs[k] as number
    const off = segs[k + 1] as number
    const len = segs[k + 2] as number
    if (len <= 0 || off < 0 || off + len > PAGE_SIZE) throw svmError('EINVAL', `dma: segment [${off}, +${len}) is not inside a page`)
    if (!system.isLive(frame)) throw svmError('EFAULT', `dma: frame ${frame} is not mapped`)
    if (write && frame === ZERO_FRAME) throw svmError('EFAULT', 'dma: write to the zero page')
    total += len
  }
  return total
}

/** Reads the segments into one buffer (a snapshot: the reply may be delivered later). */
export function dmaRead (system: SystemMemory, segs: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(checkSegments(system, segs, false))
  let o = 0
  for (let k = 0; k < segs.length; k += 3) {
    const frame = segs[k] as number
    const off = segs[k + 1] as number
    const len = segs[k + 2] as number
    out.set(system.view(frame).subarray(off, off + len), o)
    o += len
  }
  return out
}

export function dmaWrite (system: SystemMemory, segs: readonly number[], data: Payload | null): void {
  const total = checkSegments(system, segs, true)
  if (data === null || data.length !== total) throw svmError('EINVAL', `dma: ${total} bytes of data expected`)
  const cursor = new PayloadCursor(data)
  for (let k = 0; k < segs.length; k += 3) {
    cursor.read(system.view(segs[k] as number), segs[k + 1] as number, segs[k + 2] as number)
  }
}

/**
 * Runs an exec job: a list of ops, one after the other, each going through
 * GpuMemory (and so through the page table and the fault handler). The
 * first op that cannot be serviced stops the job with its errno code and
 * index; the ops before it have taken effect. Large fills, copies and
 * checksums stream in 8 MiB pieces.
 */
import { createHash } from 'node:crypto'
import { SvmError, svmError } from '../../../shared/errors.js'
import type { Payload } from '../../../shared/transport/payload.js'
import { slicePayload } from '../../../shared/transport/payload.js'
import type { WireExecOp, WireExecReply, WireExecResult } from '../../../shared/schemas/vm.js'
import { MAX_READ_LENGTH } from '../../../shared/schemas/vm.js'
import type { JobStats } from '../counters.js'
import { newJobStats } from '../counters.js'
import type { GpuVm } from '../svm/gpu-vm.js'
import type { GpuMemory } from './gpu-memory.js'

const PIECE = 8 * 1024 * 1024

function aligned4 (addr: number): void {
  if (addr % 4 !== 0) throw svmError('EINVAL', `u32 access at 0x${addr.toString(16)} is not 4-byte aligned`)
}

export async function runJob (mem: GpuMemory, vm: GpuVm, ops: readonly WireExecOp[], data: Payload | null): Promise<{ reply: WireExecReply, chunks: Uint8Array[] }> {
  const job = newJobStats()
  const results: WireExecResult[] = []
  const chunks: Uint8Array[] = []
  let replyBytes = 0
  for (let i = 0; i < ops.length; i++) {
    try {
      results.push(await runOp(mem, vm, ops[i] as WireExecOp, data, job, (buf) => {
        if (replyBytes + buf.byteLength > MAX_READ_LENGTH) throw svmError('EINVAL', `a job returns at most ${MAX_READ_LENGTH} bytes`)
        const at = replyBytes
        chunks.push(buf)
        replyBytes += buf.byteLength
        return at
      }))
    } catch (err) {
      if (!(err instanceof SvmError)) throw err
      return { reply: { results, stats: job, error: { code: err.code, message: err.message, opIndex: i } }, chunks }
    }
  }
  return { reply: { results, stats: job }, chunks }
}

async function runOp (
  mem: GpuMemory,
  vm: GpuVm,
  op: WireExecOp,
  data: Payload | null,
  job: JobStats,
  emit: (buf: Uint8Array) => number
): Promise<WireExecResult> {
  switch (op.op) {
    case 'read': {
      const out = new Uint8Array(op.length)
      await mem.read(vm, op.addr, out, job)
      return { at: emit(out), length: op.length }
    }
    case 'write': {
      if (data === null || op.at + op.length > data.length) throw svmError('EINVAL', 'write data missing from the payload')
      await mem.write(vm, op.addr, slicePayload(data, op.at, op.length), job)
      return {}
    }
    case 'fill': {
      const piece = new Uint8Array(Math.min(PIECE, op.length)).fill(op.byte)
      for (let o = 0; o < op.length; o += PIECE) {
        await mem.write(vm, op.addr + o, piece.subarray(0, Math.min(PIECE, op.length - o)), job)
      }
      return {}
    }
    case 'read_u32': {
      aligned4(op.addr)
      const out = new Uint8Array(4)
      await mem.read(vm, op.addr, out, job)
      return { value: new DataView(out.buffer).getUint32(0, true) }
    }
    case 'write_u32': {
      aligned4(op.addr)
      const buf = new Uint8Array(4)
      new DataView(buf.buffer).setUint32(0, op.value, true)
      await mem.write(vm, op.addr, buf, job)
      return {}
    }
    case 'atomic_add':
      aligned4(op.addr)
      return { old: await mem.atomicAdd(vm, op.addr, op.value, job) }
    case 'copy': {
      // memmove semantics: read a whole piece before writing it.
      const backwards = op.dst > op.src && op.dst < op.src + op.length
      const pieces: number[] = []
      for (let o = 0; o < op.length; o += PIECE) pieces.push(o)
      if (backwards) pieces.reverse()
      for (const o of pieces) {
        const buf = new Uint8Array(Math.min(PIECE, op.length - o))
        await mem.read(vm, op.src + o, buf, job)
        await mem.write(vm, op.dst + o, buf, job)
      }
      return {}
    }
    case 'checksum': {
      const hash = createHash('sha256')
      for (let o = 0; o < op.length; o += PIECE) {
        const buf = new Uint8Array(Math.min(PIECE, op.length - o))
        await mem.read(vm, op.addr + o, buf, job)
        hash.update(buf)
      }
      return { sha256: hash.digest('hex') }
    }
  }
}

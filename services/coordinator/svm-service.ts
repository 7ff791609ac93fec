/**
 * What the coordinator serves a registered GPU: the mm half of drm_gpusvm and
 * drm_pagemap. Each handler is a thin adapter from a wire message to the mm
 * code; the one piece of logic here is svm.range_prepare, which runs the mm
 * side of drm_gpusvm_range_find_or_insert (VMA lookup, permission, chunk
 * selection with its check_pages) and then, in the same round trip, the step
 * the GPU's fault handler takes next: migrate_vma_setup to its VRAM, or
 * hmm_range_fault for get_pages. That fusion is what keeps a GPU fault near
 * one network round trip; the steps themselves are the kernel's.
 */
import { SvmError, svmError } from '../../shared/errors.js'
import type { Reply } from '../../shared/protocol/rpc.js'
import type { Pages, RangePrepareParams, RangePrepareResult } from '../../shared/protocol/messages/coordinator.js'
import { CHUNK_SIZES, selectChunk } from '../../shared/svm/chunk.js'
import { hmmRuns } from '../../shared/svm/page-id.js'
import type { GpuPeer } from './gpu-registry.js'
import type { Mm, MmContext } from './mm/mm.js'
import { faultRange, pagesPresent } from './mm/hmm.js'
import type { Notifier } from './mm/notifiers.js'
import {
  abortSession, collectDevicePfns, collectToDevice, collectToRam, commitToDevice, commitToRam, releaseSources
} from './mm/migrate.js'
import type { MigrationSession } from './mm/migration-session.js'
import { dmaRead, dmaWrite } from './mm/dma.js'
import { PROT_WRITE, protName } from './mm/vma.js'

export interface SvmServiceDeps {
  mmctx: MmContext
  ownerOf: (gpu: number) => number | null
}

type StepOutcome<T> = { ok: true, pages: T } | { ok: false, error: { code: string, message: string } }

function stepError (err: unknown): { code: string, message: string } {
  if (err instanceof SvmError) return { code: err.code, message: err.message }
  throw err
}

/** The GPU's answer for the aligned window of one chunk size (it knows its ranges). */
function overlapsFlag (flags: readonly boolean[], start: number, end: number): boolean {
  const i = CHUNK_SIZES.indexOf(end - start)
  return i >= 0 && flags[i] === true
}

function notifierOf (mm: Mm, gpu: number, id: number): Notifier {
  const n = mm.notifiers.get(gpu, id)
  if (n === undefined) throw svmError('EINVAL', `notifier ${id} of gpu${gpu} is not registered`)
  return n
}

/** [id, seq, ...] for notifiers whose invalidation the GPU ran itself. */
function settledSeqs (mm: Mm, gpu: number, ids: readonly number[]): number[] {
  const out: number[] = []
  for (const id of ids) {
    const n = mm.notifiers.get(gpu, id)
    if (n !== undefined) out.push(id, n.settledSeq())
  }
  return out
}

function session (d: SvmServiceDeps, gpu: number, id: number): MigrationSession {
  const s = d.mmctx.sessions.get(id)
  if (s === undefined) throw svmError('EBUSY', `migration ${id} is no longer open (aborted by its deadline?)`)
  if (s.gpu !== gpu) throw svmError('EPERM', `migration ${id} belongs to gpu${s.gpu}`)
  return s
}

async function faultStep (d: SvmServiceDeps, mm: Mm, gpu: number, notifier: Notifier, start: number, end: number, write: boolean): Promise<StepOutcome<Pages>> {
  try {
    const pages = await faultRange(mm, {
      start, end, fault: true, write, owner: d.ownerOf(gpu), notifier, timeoutMs: d.mmctx.config.hmmTimeoutMs
    }, (r) => ({ seq: r.seq, runs: hmmRuns(r.entries) }))
    return { ok: true, pages }
  } catch (err) {
    return { ok: false, error: stepError(err) }
  }
}

/** The hmm_range_fault of get_pages, run right after a migration ends. */
async function fusedFault (d: SvmServiceDeps, gpu: number, f: { pid: number, notifier: number, start: number, end: number, write: boolean }): Promise<StepOutcome<Pages>> {
  try {
    const mm = d.mmctx.mm(f.pid)
    return await faultStep(d, mm, gpu, notifierOf(mm, gpu, f.notifier), f.start, f.end, f.write)
  } catch (err) {
    return { ok: false, error: stepError(err) }
  }
}

async function rangePrepare (d: SvmServiceDeps, gpu: number, p: RangePrepareParams): Promise<Reply<RangePrepareResult>> {
  const mm = d.mmctx.mm(p.pid)
  const notifier = mm.notifiers.insert(gpu, p.notifier.id, p.notifier.start, p.notifier.end)
  const owner = d.ownerOf(gpu)
  const selfIds = p.migrate?.selfNotifiers ?? []
  let start = 0
  let end = 0
  let migrateDevmem = false
  await mm.lock.read(() => {
    if (p.locate !== null) {
      const l = p.locate
      const vma = mm.vmas.find(l.addr)
      if (vma === undefined) throw svmError('ENOENT', `no CPU mapping at 0x${l.addr.toString(16)}`)
      if (!l.readOnly && (vma.prot & PROT_WRITE) === 0) throw svmError('EPERM', `write access to read-only mapping at 0x${l.addr.toString(16)}`)
      migrateDevmem = l.devmemPossible && vma.shm === null
      const chunk = selectChunk({
        addr: l.addr,
        vmaStart: vma.start,
        vmaEnd: vma.end,
        notifierStart: notifier.start,
        notifierEnd: notifier.end,
        gvaStart: l.gvaStart,
        gvaEnd: l.gvaEnd,
        checkPagesThreshold: l.checkPagesThreshold,
        overlapsRange: (s, e) => overlapsFlag(l.overlaps, s, e),
        allPagesPresent: (s, e) => pagesPresent(mm, s, e, owner)
      })
      if (chunk === null) throw svmError('EINVAL', `no chunk fits at 0x${l.addr.toString(16)}`)
      start = chunk.start
      end = chunk.end
    } else if (p.range !== null) {
      const vma = mm.vmas.find(p.range.start)
      if (vma === undefined || p.range.end > vma.end) throw svmError('ENOENT', 'range no longer inside one CPU mapping')
      start = p.range.start
      end = p.range.end
      migrateDevmem = vma.shm === null
    } else {
      throw svmError('EINVAL', 'range_prepare needs locate or range')
    }
  })

  let migrate: RangePrepareResult['migrate'] = null
  let data: Uint8Array[] | undefined
  let onConsumed: (() => void) | undefined
  if (p.migrate !== null && migrateDevmem) {
    try {
      const out = await collectToDevice(mm, start, end, gpu, owner, { gpu, ids: selfIds })
      const reserve = p.migrate.reserve
      if (out.status === 'equal') {
        migrate = { outcome: 'equal' }
      } else if (reserve !== null && out.session.slots <= reserve.pages) {
        // Fits the VRAM set aside: commit now. The source frames stay pinned
        // until the reply's data has been consumed, then go.
        const session = out.session
        const failed = commitToDevice(d.mmctx, session, reserve.pfn, true)
        data = out.data
        onConsumed = () => { releaseSources(d.mmctx, session) }
        migrate = { outcome: 'committed', committed: { copy: out.copy, failed } }
      } else {
        migrate = { outcome: 'collected', collected: { session: out.session.id, copy: out.copy } }
        data = out.data
      }
    } catch (err) {
      migrate = { outcome: 'failed', error: stepError(err) }
    }
  }
  let pages: RangePrepareResult['pages'] = null
  const faultWanted = p.fault !== null && (
    p.migrate === null || !migrateDevmem || migrate?.outcome === 'committed' ||
    (migrate !== null && migrate.outcome !== 'collected' && p.migrate.faultOn.includes(migrate.outcome))
  )
  if (faultWanted && p.fault !== null) pages = await faultStep(d, mm, gpu, notifier, start, end, p.fault.write)
  return { result: { selfSeqs: settledSeqs(mm, gpu, selfIds), start, end, migrateDevmem, migrate, pages }, data, onConsumed }
}

export function serveSvm (peer: GpuPeer, gpuOf: () => number, d: SvmServiceDeps): void {
  const ctx = d.mmctx
  peer.handle('svm.range_prepare', (p) => rangePrepare(d, gpuOf(), p))

  peer.handle('svm.hmm_range_fault', async (p) => {
    const gpu = gpuOf()
    const mm = ctx.mm(p.pid)
    const notifier = notifierOf(mm, gpu, p.notifier)
    const result = await faultRange(mm, {
      start: p.start,
      end: p.end,
      fault: p.fault,
      write: p.write,
      owner: p.ownerless ? null : d.ownerOf(gpu),
      notifier,
      timeoutMs: ctx.config.hmmTimeoutMs
    }, (r) => ({ seq: r.seq, runs: hmmRuns(r.entries) }))
    return { result }
  })

  peer.handle('mmu.notifier_remove', (p) => {
    const gpu = gpuOf()
    const mm = ctx.mms.get(p.pid)
    if (mm !== undefined) for (const id of p.ids) mm.notifiers.remove(gpu, id)
    return { result: {} }
  })

  peer.handle('migrate.commit_to_device', async (p) => {
    const gpu = gpuOf()
    const s = session(d, gpu, p.session)
    const failed = commitToDevice(ctx, s, p.dst)
    return { result: { failed, pages: p.fault === null ? null : await fusedFault(d, gpu, p.fault) } }
  })

  peer.handle('migrate.collect_to_ram', async (p) => {
    const gpu = gpuOf()
    const mm = ctx.mm(p.pid)
    try {
      const out = await collectToRam(mm, p.start, p.end, gpu, p.pfnLo, p.pfnHi, d.ownerOf(gpu), { gpu, ids: p.selfNotifiers })
      return { result: { session: out.session?.id ?? null, index: out.index, pfns: out.pfns, selfSeqs: settledSeqs(mm, gpu, p.selfNotifiers) } }
    } catch (err) {
      if (err instanceof SvmError) return { result: { session: null, index: [], pfns: [], selfSeqs: settledSeqs(mm, gpu, p.selfNotifiers) } }
      throw err
    }
  })

  peer.handle('migrate.collect_device_pfns', async (p) => {
    const gpu = gpuOf()
    const out = await collectDevicePfns(ctx, gpu, p.pfns, d.ownerOf(gpu))
    return { result: { session: out.session?.id ?? null, index: out.index, pfns: out.pfns, selfSeqs: [] } }
  })

  peer.handle('migrate.commit_to_ram', async (p, data) => {
    const gpu = gpuOf()
    commitToRam(ctx, session(d, gpu, p.session), data)
    return { result: { pages: p.fault === null ? null : await fusedFault(d, gpu, p.fault) } }
  })

  peer.handle('migrate.abort', (p) => {
    const s = ctx.sessions.get(p.session)
    if (s === undefined || s.gpu !== gpuOf()) return { result: { orphans: [] } }
    return { result: { orphans: abortSession(ctx, s) } }
  })

  peer.handle('mm.vmas', (p) => {
    gpuOf()
    const mm = ctx.mm(p.pid)
    return { result: { vmas: mm.vmas.overlapping(p.start, p.end).map((v) => ({ start: v.start, end: v.end, prot: protName(v.prot), shared: v.shm !== null })) } }
  })

  peer.handle('dma.read', (p) => {
    gpuOf()
    return { result: {}, data: [dmaRead(ctx.phys.system, p.segs)] }
  })

  peer.handle('dma.write', (p, data) => {
    gpuOf()
    dmaWrite(ctx.phys.system, p.segs, data)
    return { result: {} }
  })
}

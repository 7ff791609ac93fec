/**
 * Model-based test of the CPU side: random sequences of mmap (fixed),
 * munmap, mprotect, mremap, write, read, fork and exit run against the mm
 * core and against a per-page model; every read, and a full sweep at the
 * end, must give the model's bytes, and every failure the model's error.
 * Seeded (FC_SEED) and replayable.
 */
import t from 'tap'
import fc from 'fast-check'
import { mmHarness } from '../../helpers/mm-harness.js'
import { mmap, mprotect, mremap, munmap } from '../../../services/coordinator/mm/map-ops.js'
import { cpuRead, cpuWrite } from '../../../services/coordinator/mm/cpu-access.js'
import { fork } from '../../../services/coordinator/mm/fork.js'
import { exitMm } from '../../../services/coordinator/mm/exit.js'
import { PROT_NONE, PROT_READ, PROT_RW, PROT_WRITE } from '../../../services/coordinator/mm/vma.js'
import type { Mm } from '../../../services/coordinator/mm/mm.js'

const P = 4096
const BASE = 0x40000000
const WINDOW = 16 // pages: small, so operations keep meeting each other's pages

interface PageModel { prot: number, obj: number | null, pgoff: number }
interface ProcModel { pages: Map<number, PageModel>, data: Map<number, Buffer> }
interface World { procs: Map<number, ProcModel>, objects: Map<number, Map<number, Buffer>>, nextObj: number }

type Op =
  | { k: 'mmap', page: number, n: number, prot: number, shared: boolean }
  | { k: 'munmap', page: number, n: number }
  | { k: 'mprotect', page: number, n: number, prot: number }
  | { k: 'mremap', page: number, n: number, newN: number, to: number | null }
  | { k: 'write', page: number, off: number, len: number, seed: number }
  | { k: 'read', page: number, off: number, len: number }
  | { k: 'fork' }
  | { k: 'exit' }

const protArb = fc.constantFrom(PROT_RW, PROT_RW, PROT_RW, PROT_READ, PROT_NONE)
const opArb: fc.Arbitrary<Op & { proc: number }> = fc.tuple(fc.nat(3), fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('mmap' as const), page: fc.nat(WINDOW - 1), n: fc.integer({ min: 1, max: 4 }), prot: protArb, shared: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('munmap' as const), page: fc.nat(WINDOW - 1), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('mprotect' as const), page: fc.nat(WINDOW - 1), n: fc.integer({ min: 1, max: 6 }), prot: protArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('mremap' as const), page: fc.nat(WINDOW - 1), n: fc.integer({ min: 1, max: 4 }), newN: fc.integer({ min: 1, max: 5 }), to: fc.option(fc.nat(WINDOW - 1)) }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('write' as const), page: fc.nat(), off: fc.nat(P - 1), len: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 3 * P })), seed: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('read' as const), page: fc.nat(), off: fc.nat(P - 1), len: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 3 * P })) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'fork' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'exit' as const }) }
)).map(([proc, op]) => ({ ...op, proc }))

function fillBytes (len: number, seed: number): Buffer {
  const b = Buffer.alloc(len)
  let x = (seed % 0x7fffffff) + 1
  for (let i = 0; i < len; i++) { x = (x * 48271) % 0x7fffffff; b[i] = x & 0xff }
  return b
}

function compatible (a: PageModel, b: PageModel): boolean {
  return a.prot === b.prot && (a.obj === null ? b.obj === null : a.obj === b.obj && a.pgoff + 1 === b.pgoff)
}

/** The model's VMA around a page: the maximal run of compatible pages. */
function vmaAround (p: ProcModel, page: number): [number, number] | null {
  const m = p.pages.get(page)
  if (m === undefined) return null
  let lo = page
  while (p.pages.has(lo - 1) && compatible(p.pages.get(lo - 1) as PageModel, p.pages.get(lo) as PageModel)) lo--
  let hi = page + 1
  while (p.pages.has(hi) && compatible(p.pages.get(hi - 1) as PageModel, p.pages.get(hi) as PageModel)) hi++
  return [lo, hi]
}

function pageBytes (w: World, p: ProcModel, page: number): Buffer {
  const m = p.pages.get(page) as PageModel
  if (m.obj !== null) {
    const o = w.objects.get(m.obj) as Map<number, Buffer>
    let b = o.get(m.pgoff)
    if (b === undefined) { b = Buffer.alloc(P); o.set(m.pgoff, b) }
    return b
  }
  let b = p.data.get(page)
  if (b === undefined) { b = Buffer.alloc(P); p.data.set(page, b) }
  return b
}

function unmapModel (p: ProcModel, page: number, n: number): void {
  for (let i = page; i < page + n; i++) { p.pages.delete(i); p.data.delete(i) }
}

function accessible (p: ProcModel, first: number, last: number, need: number): boolean {
  for (let i = first; i <= last; i++) {
    const m = p.pages.get(i)
    if (m === undefined || (m.prot & need) === 0) return false
  }
  return true
}

async function code (promise: Promise<unknown>): Promise<string | null> {
  try { await promise; return null } catch (err) { return (err as { code?: string }).code ?? String(err) }
}

async function runOps (ops: Array<Op & { proc: number }>): Promise<void> {
  const h = mmHarness({}, 1024 * 1024 * 1024)
  const mms: Mm[] = [h.mm]
  const w: World = { procs: new Map([[h.mm.pid, { pages: new Map(), data: new Map() }]]), objects: new Map(), nextObj: 1 }
  let nextPid = 100
  const page = (n: number): number => BASE + n * P
  await mmap(h.mm, { length: WINDOW * P, addr: BASE, prot: PROT_RW, shared: false })
  for (let i = 0; i < WINDOW; i++) (w.procs.get(h.mm.pid) as ProcModel).pages.set(i, { prot: PROT_RW, obj: null, pgoff: i })
  for (const op of ops) {
    const mm = mms[op.proc % mms.length] as Mm
    const p = w.procs.get(mm.pid) as ProcModel
    if (op.k === 'read' || op.k === 'write') {
      // Aim accesses at mapped pages (any page when nothing is mapped).
      const mapped = [...p.pages.keys()].sort((a, b) => a - b)
      op.page = mapped.length > 0 ? mapped[op.page % mapped.length] as number : op.page % WINDOW
    }
    switch (op.k) {
      case 'mmap': {
        await mmap(mm, { length: op.n * P, addr: page(op.page), prot: op.prot, shared: op.shared })
        unmapModel(p, op.page, op.n)
        const obj = op.shared ? w.nextObj++ : null
        if (obj !== null) w.objects.set(obj, new Map())
        for (let i = 0; i < op.n; i++) p.pages.set(op.page + i, { prot: op.prot, obj, pgoff: i })
        break
      }
      case 'munmap':
        await munmap(mm, page(op.page), op.n * P)
        unmapModel(p, op.page, op.n)
        break
      case 'mprotect': {
        const covered = [...Array(op.n).keys()].every((i) => p.pages.has(op.page + i))
        const c = await code(mprotect(mm, page(op.page), op.n * P, op.prot))
        if (!covered) { if (c !== 'ENOMEM') throw new Error(`mprotect over a hole gave ${c}`); break }
        if (c !== null) throw new Error(`mprotect failed ${c}`)
        for (let i = 0; i < op.n; i++) (p.pages.get(op.page + i) as PageModel).prot = op.prot
        break
      }
      case 'mremap': {
        const vma = vmaAround(p, op.page)
        const inOne = vma !== null && op.page + op.n <= vma[1]
        const to = op.to === null ? undefined : page(op.to)
        const overlap = op.to !== null && op.to < op.page + op.n && op.page < op.to + op.newN
        if (overlap) {
          if (await code(mremap(mm, { addr: page(op.page), oldLength: op.n * P, newLength: op.newN * P, newAddr: to })) !== 'EINVAL') throw new Error('overlap')
          break
        }
        if (!inOne) {
          const c = await code(mremap(mm, { addr: page(op.page), oldLength: op.n * P, newLength: op.newN * P, newAddr: to }))
          if (c !== 'EFAULT') throw new Error(`mremap outside one VMA gave ${c}`)
          break
        }
        const result = await mremap(mm, { addr: page(op.page), oldLength: op.n * P, newLength: op.newN * P, newAddr: to })
        const dest = (result - BASE) / P
        const moved: Array<[PageModel, Buffer | undefined]> = []
        for (let i = 0; i < Math.min(op.n, op.newN); i++) moved.push([p.pages.get(op.page + i) as PageModel, p.data.get(op.page + i)])
        const first = p.pages.get(op.page) as PageModel
        unmapModel(p, op.page, op.n)
        if (dest !== op.page || op.to !== null) unmapModel(p, dest, op.newN)
        for (let i = 0; i < op.newN; i++) {
          const [m, d] = moved[i] ?? [{ prot: first.prot, obj: first.obj, pgoff: first.pgoff + i }, undefined]
          p.pages.set(dest + i, { ...m })
          if (d !== undefined) p.data.set(dest + i, d)
        }
        break
      }
      case 'write': {
        const addr = page(op.page) + op.off
        const data = fillBytes(op.len, op.seed)
        const first = op.page
        const last = Math.floor((op.page * P + op.off + op.len - 1) / P)
        const ok = accessible(p, first, last, PROT_WRITE)
        const c = await code(cpuWrite(mm, addr, data))
        if (!ok) { if (c !== 'EFAULT') throw new Error(`write should fault, got ${c}`); break }
        if (c !== null) throw new Error(`write failed ${c}`)
        for (let i = 0; i < op.len; i++) {
          const a = op.page * P + op.off + i
          pageBytes(w, p, Math.floor(a / P))[a % P] = data[i] as number
        }
        break
      }
      case 'read': {
        const first = op.page
        const last = Math.floor((op.page * P + op.off + op.len - 1) / P)
        const ok = accessible(p, first, last, PROT_READ)
        let got: Buffer | null = null
        const c = await code(cpuRead(mm, page(op.page) + op.off, op.len).then((b) => { got = b }))
        if (!ok) { if (c !== 'EFAULT') throw new Error(`read should fault, got ${c}`); break }
        if (c !== null || got === null) throw new Error(`read failed ${c}`)
        const want = Buffer.alloc(op.len)
        for (let i = 0; i < op.len; i++) {
          const a = op.page * P + op.off + i
          want[i] = pageBytes(w, p, Math.floor(a / P))[a % P] as number
        }
        if (!want.equals(got)) throw new Error(`read mismatch at pid ${mm.pid} page ${op.page}+${op.off} len ${op.len}`)
        break
      }
      case 'fork': {
        if (mms.length >= 4) break
        const child = await fork(mm, nextPid++)
        mms.push(child)
        const cp: ProcModel = { pages: new Map(), data: new Map() }
        for (const [k, v] of p.pages) cp.pages.set(k, { ...v })
        for (const [k, v] of p.data) cp.data.set(k, Buffer.from(v))
        w.procs.set(child.pid, cp)
        break
      }
      case 'exit': {
        if (mms.length === 1) break
        await exitMm(mm)
        mms.splice(mms.indexOf(mm), 1)
        w.procs.delete(mm.pid)
        break
      }
    }
  }
  // Full sweep: every readable page of every process (in the window and wherever mremap put things).
  for (const mm of mms) {
    const p = w.procs.get(mm.pid) as ProcModel
    for (const [pg, m] of p.pages) {
      if ((m.prot & PROT_READ) === 0) continue
      const got = await cpuRead(mm, BASE + pg * P, P)
      if (!got.equals(pageBytes(w, p, pg))) throw new Error(`sweep mismatch pid ${mm.pid} page ${pg}`)
    }
    if (mm.vmas.all.reduce((n, v) => n + (v.end - v.start) / P, 0) !== p.pages.size) throw new Error('mapped size differs from the model')
  }
  // Nothing leaks: after every process exits, only the zero page is in use.
  for (const mm of mms) await exitMm(mm)
  if (h.ctx.phys.system.usedFrames !== 0) throw new Error(`${h.ctx.phys.system.usedFrames} frames leaked`)
}

t.test('random mm operation sequences match the model', async (t) => {
  const seed = Number(process.env.FC_SEED ?? 20261122)
  await t.resolves(fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 60 }), runOps), {
    seed, numRuns: Number(process.env.FC_RUNS ?? 200), endOnFailure: true
  }), `every sequence matches (seed ${seed})`)
})

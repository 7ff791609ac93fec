/**
 * G5: CPU-side metadata bytes per tracked 4 KiB page, measured (not
 * estimated) in a child process started with --expose-gc (g5-probe.ts):
 *   (heapUsed + arrayBuffers after populating N pages, after GC)
 * − (the same before the mapping) − (page-data slabs added), ÷ N.
 * The absolute figure (everything in the heap, fixed costs included, minus
 * all page data, ÷ N) and the mm's own estimate are reported beside it.
 * Goal ≤ 64 B (the kernel's struct page), stretch ≤ 24 B; the ratio shown is
 * the figure ÷ 64 B. One run: a byte count, not a timing, so no trials.
 */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import type { BenchConfig } from '../config.js'
import { meets, type GoalFigure } from '../figures.js'
import { spawnNode, stopChild } from '../processes.js'
import { summarize } from '../stats.js'

const here = dirname(fileURLToPath(import.meta.url))
const STRUCT_PAGE = 64

interface ProbeResult {
  pages: number
  before: { heapUsed: number, arrayBuffers: number }
  after: { heapUsed: number, arrayBuffers: number }
  slabBefore: number
  slabAfter: number
  usedFrames: number
  estimate: { phys: number, pageTable: number }
  populateMs: number
}

export interface G5Result { figure: GoalFigure, raw: ProbeResult, absolutePerPage: number, estimatePerPage: number }

export async function measureG5 (cfg: BenchConfig): Promise<G5Result> {
  const child = spawnNode('g5-probe', join(here, 'g5-probe.js'), [String(cfg.g5Pages)], ['--expose-gc'])
  let code: number
  try {
    code = await child.exited
  } finally {
    await stopChild(child)
  }
  const line = child.output().trim().split('\n').pop() ?? ''
  let raw: ProbeResult
  try {
    if (code !== 0) throw new Error(`exit ${code}`)
    raw = JSON.parse(line) as ProbeResult
  } catch (err) {
    throw new Error(`G5 probe failed (${(err as Error).message}):\n${child.output()}`)
  }
  const total = (u: ProbeResult['before']): number => u.heapUsed + u.arrayBuffers
  const perPage = ((total(raw.after) - raw.slabAfter) - (total(raw.before) - raw.slabBefore)) / raw.pages
  const absolutePerPage = (total(raw.after) - raw.slabAfter) / raw.pages
  const estimatePerPage = (raw.estimate.phys + raw.estimate.pageTable) / raw.pages
  const ratio = perPage / STRUCT_PAGE
  const target = { op: '<=' as const, goal: 1.0, stretch: 24 / STRUCT_PAGE }
  const figure: GoalFigure = {
    id: 'G5',
    label: 'CPU-side metadata per tracked 4 KiB page',
    unit: 'B',
    emulator: summarize([perPage]),
    baselineLabel: 'struct page (64 B)',
    baseline: summarize([STRUCT_PAGE]),
    ratio,
    pairedRatio: summarize([ratio]),
    target,
    goalMet: meets(ratio, target.op, target.goal),
    stretchMet: meets(ratio, target.op, target.stretch),
    targetText: { goal: '≤ 64 B', stretch: '≤ 24 B' },
    note: `${raw.pages} pages populated in ${(raw.populateMs / 1000).toFixed(1)} s; absolute (fixed heap included) ${absolutePerPage.toFixed(1)} B/page; mm's own estimate ${estimatePerPage.toFixed(1)} B/page`
  }
  return { figure, raw, absolutePerPage, estimatePerPage }
}

/**
 * The bench's output: a plain-text table on stdout (baselines, then each
 * goal with both terms, the ratio, the paired-trial ratio range, the goal,
 * the stretch and a pass mark, then notes) and the same as JSON in a file.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { cpus, loadavg, totalmem } from 'node:os'
import type { BaselineFigure, GoalFigure, Target } from './figures.js'
import { formatRatio, formatValue } from './format.js'

export interface BenchReport {
  startedAt: string
  durationS: number
  quick: boolean
  trials: number
  /** The sizes this run used (config.ts). */
  config: Record<string, unknown>
  machine: { node: string, cpus: number, cpuModel: string, memBytes: number, loadavgStart: number[], loadavgEnd: number[] }
  baselines: BaselineFigure[]
  goals: GoalFigure[]
  extra: Record<string, unknown>
}

/** The machine, with the 1/5/15-minute load averages from the start of the run and now. */
export function machineInfo (loadavgStart: number[]): BenchReport['machine'] {
  return { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memBytes: totalmem(), loadavgStart, loadavgEnd: loadavg() }
}

function table (rows: string[][], align: Array<'l' | 'r'>): string {
  const widths = align.map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? '')].length)))
  return rows.map((r) => r.map((cell, c) => {
    const pad = ' '.repeat((widths[c] ?? 0) - [...cell].length)
    return align[c] === 'r' ? pad + cell : cell + pad
  }).join('  ').trimEnd()).join('\n')
}

function bound (t: Target, v: number | null): string {
  return v === null ? '—' : `${t.op === '<=' ? '≤' : '≥'} ${v}`
}

function mark (g: GoalFigure): string {
  if (g.stretchMet) return 'PASS (stretch)'
  if (g.goalMet) return 'PASS'
  return 'MISS'
}

export function renderReport (r: BenchReport): string {
  const out: string[] = []
  out.push(`gpusvm-emu bench${r.quick ? ' (--quick: tiny sizes, figures not meaningful)' : ''}: ${r.trials} trial(s), median [min – max]; ` +
    `${r.machine.cpus} × ${r.machine.cpuModel}, node ${r.machine.node}, ${r.durationS.toFixed(0)} s; ` +
    `load average ${r.machine.loadavgStart[0]?.toFixed(1) ?? '?'} at start, ${r.machine.loadavgEnd[0]?.toFixed(1) ?? '?'} at end`)
  out.push('')
  out.push('Baselines (two Node processes on 127.0.0.1; memcpy in this process)')
  out.push(table([
    ['baseline', 'median', 'min', 'max'],
    ...r.baselines.map((b) => [b.label, formatValue(b.value.median, b.unit), formatValue(b.value.min, b.unit), formatValue(b.value.max, b.unit)])
  ], ['l', 'r', 'r', 'r']))
  out.push('')
  out.push('Goals (ratio = median emulator ÷ median baseline; paired = per-trial ratios [min – max])')
  out.push(table([
    ['id', 'figure', 'emulator', 'baseline', '', 'ratio', 'paired', 'goal', 'stretch', 'mark'],
    ...r.goals.map((g) => [
      g.id,
      g.label,
      formatValue(g.emulator.median, g.unit),
      formatValue(g.baseline.median, g.unit),
      g.baselineLabel,
      formatRatio(g.ratio),
      `[${formatRatio(g.pairedRatio.min)} – ${formatRatio(g.pairedRatio.max)}]`,
      g.targetText?.goal ?? bound(g.target, g.target.goal),
      g.targetText?.stretch ?? bound(g.target, g.target.stretch),
      mark(g)
    ])
  ], ['l', 'l', 'r', 'r', 'l', 'r', 'l', 'l', 'l', 'l']))
  const notes = r.goals.filter((g) => g.note !== undefined)
  if (notes.length > 0) {
    out.push('')
    for (const g of notes) out.push(`  ${g.id}: ${g.note as string}`)
  }
  return out.join('\n') + '\n'
}

export function writeReport (file: string, r: BenchReport): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n')
}

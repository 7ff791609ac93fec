/**
 * What the bench reports: baselines (physical limits measured in this run)
 * and goal figures, each the ratio of an emulator figure to a same-run
 * baseline, with the goal and stretch targets of perf-goals.md. The ratio is
 * median(emulator) ÷ median(baseline); the median of the per-trial ratios
 * (each emulator trial paired with the baseline trial just before it) is kept
 * too, as a check that drift between trials does not skew the figure.
 */
import { median, summarize, type TrialSummary } from './stats.js'

export type Unit = 'us' | 'B/s' | 'faults/s' | 'B'

export interface Target { op: '<=' | '>=', goal: number, stretch: number | null }

export interface BaselineFigure { id: string, label: string, unit: Unit, value: TrialSummary }

export interface GoalFigure {
  id: string
  label: string
  unit: Unit
  emulator: TrialSummary
  baselineLabel: string
  baseline: TrialSummary
  ratio: number
  pairedRatio: TrialSummary
  target: Target
  /** Whether the ratio meets the goal and the stretch target. */
  goalMet: boolean
  stretchMet: boolean
  /** How to show the targets when they are not plain ratio bounds (G5). */
  targetText?: { goal: string, stretch: string }
  note?: string
}

export function meets (ratio: number, op: Target['op'], bound: number): boolean {
  return Number.isFinite(ratio) && (op === '<=' ? ratio <= bound : ratio >= bound)
}

/** A goal figure from paired per-trial values (emulator[i] measured right after baseline[i]). */
export function goalFigure (f: { id: string, label: string, unit: Unit, emulator: number[], baselineLabel: string, baseline: number[], target: Target, note?: string }): GoalFigure {
  if (f.emulator.length !== f.baseline.length) throw new Error(`${f.id}: ${f.emulator.length} emulator trials but ${f.baseline.length} baseline trials`)
  const ratio = median(f.emulator) / median(f.baseline)
  return {
    id: f.id,
    label: f.label,
    unit: f.unit,
    emulator: summarize(f.emulator),
    baselineLabel: f.baselineLabel,
    baseline: summarize(f.baseline),
    ratio,
    pairedRatio: summarize(f.emulator.map((e, i) => e / (f.baseline[i] as number))),
    target: f.target,
    goalMet: meets(ratio, f.target.op, f.target.goal),
    stretchMet: f.target.stretch !== null && meets(ratio, f.target.op, f.target.stretch),
    ...(f.note !== undefined ? { note: f.note } : {})
  }
}

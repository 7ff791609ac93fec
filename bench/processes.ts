/**
 * Every child process the benchmark starts goes through here, so that all of
 * them are stopped at the end: on success, on an error and on Ctrl-C or
 * SIGTERM (and SIGKILLed synchronously if the bench exits some other way).
 * Children get an IPC channel; the emulator's services and the bench peer
 * exit when it closes, so none outlives a bench that is killed hard.
 * The last few KiB of each child's output are kept for error messages.
 */
import { type ChildProcess, spawn } from 'node:child_process'

export interface Child {
  name: string
  proc: ChildProcess
  /** The tail of its stdout and stderr. */
  output: () => string
  /** Resolves with the exit code (or 128 + signal) when it exits. */
  exited: Promise<number>
}

const TAIL_BYTES = 8192
const live = new Set<ChildProcess>()
const started: Array<{ name: string, pid: number }> = []

export function spawnNode (name: string, script: string, args: string[], execArgv: string[] = []): Child {
  const proc = spawn(process.execPath, [...execArgv, script, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  live.add(proc)
  if (proc.pid !== undefined) started.push({ name, pid: proc.pid })
  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const exited = new Promise<number>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      resolve(code ?? (signal !== null ? 128 : 1))
    })
    proc.once('error', (err) => {
      keep(Buffer.from(`spawn error: ${err.message}\n`))
      live.delete(proc)
      resolve(127)
    })
  })
  return { name, proc, output: () => tail, exited }
}

/** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
export async function stopChild (child: Child, graceMs = 3000): Promise<void> {
  const p = child.proc
  if (p.exitCode !== null || p.signalCode !== null || !live.has(p)) return
  p.kill('SIGTERM')
  const timer = setTimeout(() => { p.kill('SIGKILL') }, graceMs)
  await child.exited
  clearTimeout(timer)
}

/** Every child started so far (for the report: a test checks none survives the bench). */
export function startedChildren (): Array<{ name: string, pid: number }> {
  return [...started]
}

/** How many children are still running. */
export function liveChildren (): number {
  return live.size
}

function killAllNow (): void {
  for (const p of live) {
    try { p.kill('SIGKILL') } catch {}
  }
  live.clear()
}

/** Kills every child if the bench is interrupted or exits without stopping them. */
export function installCleanup (): void {
  process.once('exit', killAllNow)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping child processes\n`)
      killAllNow()
      process.exit(130)
    })
  }
}

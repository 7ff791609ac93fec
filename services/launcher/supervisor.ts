/**
 * Keeps a set of child processes running: restarts one that dies (as
 * compose's restart policy would), with backoff, until told to stop; then
 * SIGTERM to all, SIGKILL after a grace period. Children get an IPC channel
 * they watch, so none outlives the supervisor even if it is killed hard.
 */
import { type ChildProcess, spawn } from 'node:child_process'

export interface ChildSpec {
  name: string
  args: string[]
  /** Restart when it exits (GPUs); otherwise its exit stops everything. */
  restart: boolean
}

export class Supervisor {
  private readonly children = new Map<string, ChildProcess>()
  private stopping = false
  private readonly backoff = new Map<string, number>()
  onFatal: (name: string, code: number | null) => void = () => {}
  onRestart: (name: string) => void = () => {}

  start (spec: ChildSpec): void {
    const child = spawn(process.execPath, spec.args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.children.set(spec.name, child)
    const startedAt = Date.now()
    child.on('exit', (code, signal) => {
      if (this.children.get(spec.name) === child) this.children.delete(spec.name)
      if (this.stopping) return
      if (!spec.restart) {
        this.onFatal(spec.name, code ?? (signal !== null ? 128 : 1))
        return
      }
      const wait = Date.now() - startedAt > 10_000 ? 100 : Math.min((this.backoff.get(spec.name) ?? 100) * 2, 5000)
      this.backoff.set(spec.name, wait)
      setTimeout(() => {
        if (this.stopping) return
        this.onRestart(spec.name)
        this.start(spec)
      }, wait).unref()
    })
  }

  pidOf (name: string): number | undefined {
    return this.children.get(name)?.pid
  }

  /** Stops `first` (if given) and then everything else: SIGTERM, SIGKILL after graceMs. */
  async stop (graceMs = 5000, first?: string): Promise<void> {
    this.stopping = true
    const head = first !== undefined ? this.children.get(first) : undefined
    if (head !== undefined) await this.terminate([head], graceMs)
    await this.terminate([...this.children.values()], graceMs)
  }

  private async terminate (children: ChildProcess[], graceMs: number): Promise<void> {
    const alive = children.filter((c) => c.exitCode === null && c.signalCode === null)
    const exits = alive.map((c) => new Promise<void>((resolve) => { c.once('exit', () => { resolve() }) }))
    for (const c of alive) c.kill('SIGTERM')
    const timer = setTimeout(() => { for (const c of alive) c.kill('SIGKILL') }, graceMs)
    await Promise.all(exits)
    clearTimeout(timer)
  }
}

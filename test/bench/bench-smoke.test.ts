/**
 * `npm run bench` in miniature: runs `node dist/bench/main.js --quick`
 * (dist/ is built by pretest) and checks that it exits 0, printed a ratio
 * for every goal and every baseline, wrote the same to its JSON file, and
 * left none of the processes it started running.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const main = join(root, 'dist/bench/main.js')

const GOALS = ['G1a', 'G1a-p99', 'G1b', 'G3-2MiB', 'G3-2MiB-to-vram', 'G3-2MiB-to-system', 'G3-64KiB', 'G3-64KiB-to-vram', 'G3-64KiB-to-system', 'G4b', 'G5']
const BASELINES = ['rtt-p50', 'rtt-p99', 'stream-4096', 'stream-65536', 'stream-2097152', 'memcpy-4096', 'memcpy-65536', 'memcpy-2097152']

interface Run { code: number | null, stdout: string, stderr: string }

function runBench (args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGTERM') }, timeoutMs)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/** Whether a process with this pid is still running one of our scripts (not a reused pid). */
function stillRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return /dist\/(services|bench)\//.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
  } catch {
    return !existsSync('/proc')
  }
}

t.test('bench --quick prints every figure and cleans up', async (t) => {
  t.ok(existsSync(main), 'dist/bench/main.js is built')
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const out = join(dir, 'quick.json')
  const r = await runBench(['--quick', '--out', out], 100_000)
  t.equal(r.code, 0, `exit 0\n${r.stderr.slice(-2000)}`)

  for (const id of GOALS) {
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${id} `))
    t.ok(line, `a row for ${id}`)
    t.match(line ?? '', /\s\d+(\.\d+)?\s+\[\d+(\.\d+)? – \d+(\.\d+)?\]\s/, `${id} shows a ratio and its paired range`)
    t.match(line ?? '', /(PASS|MISS)/, `${id} has a pass mark`)
  }

  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    quick: boolean
    goals: Array<{ id: string, ratio: number, emulator: { median: number }, baseline: { median: number } }>
    baselines: Array<{ id: string, value: { median: number } }>
    extra: { children?: Array<{ name: string, pid: number }> }
  }
  t.equal(report.quick, true)
  t.same(report.goals.map((g) => g.id), GOALS, 'every goal in the JSON, in order')
  for (const g of report.goals) {
    t.ok(Number.isFinite(g.ratio) && g.ratio > 0, `${g.id}: ratio ${g.ratio}`)
    t.ok(g.emulator.median > 0 && g.baseline.median > 0, `${g.id}: both terms measured`)
  }
  t.same(report.baselines.map((b) => b.id), BASELINES, 'every baseline in the JSON')
  for (const b of report.baselines) t.ok(Number.isFinite(b.value.median) && b.value.median > 0, `${b.id}: ${b.value.median}`)

  const children = (report.extra.children ?? [])
  t.same(children.map((c) => c.name).sort(), ['coordinator', 'g5-probe', 'gpu0', 'peer'], 'the child processes it started')
  for (const c of children) t.notOk(stillRunning(c.pid), `${c.name} (pid ${c.pid}) is gone`)
})

/**
 * `npm start`'s launcher: brings up the coordinator and the GPU processes,
 * prints the URL once ready, and on SIGTERM stops everything, leaving no
 * process behind.
 */
import t from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { freePortBlock } from '../../services/cluster/free-ports.js'

const launcher = join(dirname(fileURLToPath(import.meta.url)), '../../dist/services/launcher/main.js')

function childrenOf (port: number): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
  return out.split('\n').filter((l) => /dist\/services\/(coordinator|gpu)\/main\.js/.test(l) && (l.includes(`--port ${port}`) || l.includes(`--coordinator-port ${port}`)))
}

t.test('launcher starts the cluster, prints the URL, and stops cleanly', async (t) => {
  const port = await freePortBlock(4)
  const child = spawn(process.execPath, [launcher, '--gpus', '3', '--vram', '32MiB', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`not ready: ${out}`)) }, 30_000)
    child.stdout.on('data', () => { if (out.includes('ready at')) { clearTimeout(timer); resolve() } })
  })
  t.match(out, new RegExp(`ready at http://127\\.0\\.0\\.1:${port}`))
  const topo = await (await fetch(`http://127.0.0.1:${port}/v1/topology`)).json() as { gpus: Array<{ state: string, vram: { total: number } }>, links: unknown[] }
  t.same(topo.gpus.map((g) => [g.state, g.vram.total]), [['online', 32 << 20], ['online', 32 << 20], ['online', 32 << 20]])
  t.equal(topo.links.length, 1, 'gpu0-gpu1 linked, gpu2 alone')
  for (let g = 0; g < 3; g++) {
    const h = await fetch(`http://127.0.0.1:${port + 1 + g}/healthz`)
    t.equal(h.status, 200, `gpu${g} answers health on port P+1+${g}`)
    t.equal((await fetch(`http://127.0.0.1:${port + 1 + g}/readyz`)).status, 200, `gpu${g} is ready (registered)`)
    const m = await (await fetch(`http://127.0.0.1:${port + 1 + g}/metrics`)).text()
    t.match(m, new RegExp(`gpusvm_gpu_vram_used_bytes\\{gpu="${g}"\\} 0`), `gpu${g} exports its metrics`)
  }
  t.equal(childrenOf(port).length, 4, 'coordinator and three GPU processes')
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exit status 0')
  t.same(childrenOf(port), [], 'no orphan processes')
})

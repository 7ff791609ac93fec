/**
 * `npm run bench`: measures the emulator against the physical limits of this
 * machine, per shared/reference/perf-goals.md. Baselines (ws RTT, socket
 * stream, memcpy) and emulator figures (G1a, G1b, G3, G4b) are measured in
 * interleaved trials (each trial: a baseline, then the figures that are
 * ratios against it), medians over the trials; G5 (metadata bytes) is
 * measured once in a child process. Prints a table, writes JSON.
 *
 *   node dist/bench/main.js [--quick] [--only g1a,g3,...] [--trials N] [--out FILE]
 *                           [--profile DIR]  (CPU profiles of the emulator's processes)
 */
import { loadavg } from 'node:os'
import { WsRttProbe } from './baselines/ws-rtt.js'
import { SocketStreamProbe } from './baselines/socket-stream.js'
import { MemcpyProbe } from './baselines/memcpy.js'
import { startCluster, type SpawnedCluster } from './cluster.js'
import { USAGE, configSummary, parseArgs, type BenchConfig, type Selectable } from './config.js'
import type { BaselineFigure, GoalFigure } from './figures.js'
import { formatBytes } from './format.js'
import { G1FaultLatency } from './goals/g1-fault-latency.js'
import { G3LocalMigration } from './goals/g3-local-migration.js'
import { G4bFaultThroughput } from './goals/g4b-fault-throughput.js'
import { measureG5, type G5Result } from './goals/g5-metadata.js'
import { startPeer, type Peer } from './peer-process.js'
import { installCleanup, liveChildren, startedChildren } from './processes.js'
import { machineInfo, renderReport, writeReport, type BenchReport } from './report.js'
import { Rest } from './rest-client.js'
import { summarize } from './stats.js'

function progress (msg: string): void {
  process.stderr.write(`bench: ${msg}\n`)
}

async function run (cfg: BenchConfig): Promise<void> {
  installCleanup()
  const want = (...ids: Selectable[]): boolean => ids.some((id) => cfg.only.has(id))
  const startedAt = new Date()
  const loadStart = loadavg()
  const t0 = performance.now()

  let peer: Peer | null = null
  let rtt: WsRttProbe | null = null
  let stream: SocketStreamProbe | null = null
  let memcpy: MemcpyProbe | null = null
  let cluster: SpawnedCluster | null = null
  let g1: G1FaultLatency | null = null
  let g4b: G4bFaultThroughput | null = null
  let g3: G3LocalMigration | null = null
  let g5: G5Result | null = null
  try {
    if (want('rtt', 'g1a', 'g1b', 'g4b', 'stream')) {
      peer = await startPeer()
      if (want('rtt', 'g1a', 'g1b', 'g4b')) rtt = await WsRttProbe.connect(peer.wsPort)
      if (want('stream')) stream = await SocketStreamProbe.connect(peer.tcpPort)
    }
    if (want('memcpy', 'g3')) {
      progress(`filling two ${formatBytes(cfg.memcpyPoolBytes)} pools for memcpy`)
      memcpy = new MemcpyProbe(cfg.memcpyPoolBytes)
    }
    if (want('g1a', 'g1b', 'g4b') && rtt !== null) {
      progress(`starting the emulator (coordinator + 1 GPU process, ${cfg.vram} VRAM)`)
      cluster = await startCluster({ gpus: 1, vram: cfg.vram, profileDir: cfg.profileDir })
      const rest = new Rest(cluster.url)
      progress(`emulator ready at ${cluster.url}; preparing pages`)
      if (want('g1a', 'g1b')) g1 = await G1FaultLatency.setup(cfg, rest, rtt, { g1a: want('g1a'), g1b: want('g1b') })
      if (want('g4b')) g4b = await G4bFaultThroughput.setup(cfg, rest, rtt)
    }
    if (want('g3') && memcpy !== null) {
      progress('preparing the in-process machine for G3')
      g3 = await G3LocalMigration.setup(cfg, memcpy)
    }

    for (let t = 0; t < cfg.trials; t++) {
      progress(`trial ${t + 1}/${cfg.trials} (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
      if (rtt !== null) await rtt.trial(cfg.rttRoundTrips)
      await g1?.trial()
      await g4b?.trial()
      if (stream !== null) for (const [chunk, bytes] of cfg.streamBytes) await stream.trial(chunk, Math.max(1, Math.round(bytes / chunk)))
      if (memcpy !== null) for (const [chunk, bytes] of cfg.memcpyBytes) memcpy.trial(chunk, bytes)
      await g3?.trial()
    }
    await g3?.verify()
    const g3Figures = g3?.figures() ?? []
    await g3?.close()
    g3 = null
    await cluster?.stop()
    cluster = null
    rtt?.close()
    stream?.close()
    await peer?.stop()
    peer = null

    if (want('g5')) {
      progress(`G5: populating ${cfg.g5Pages} pages in a child process (--expose-gc)`)
      g5 = await measureG5(cfg)
    }

    const baselines: BaselineFigure[] = []
    if (rtt !== null) {
      baselines.push({ id: 'rtt-p50', label: 'ws RTT p50 (64 B message)', unit: 'us', value: summarize(rtt.trials.map((p) => p.p50)) })
      baselines.push({ id: 'rtt-p99', label: 'ws RTT p99 (64 B message)', unit: 'us', value: summarize(rtt.trials.map((p) => p.p99)) })
    }
    if (stream !== null) {
      for (const [chunk, rates] of stream.trials) baselines.push({ id: `stream-${chunk}`, label: `net.Socket stream, ${formatBytes(chunk)} chunks`, unit: 'B/s', value: summarize(rates) })
    }
    if (memcpy !== null) {
      for (const [chunk, rates] of memcpy.trials) baselines.push({ id: `memcpy-${chunk}`, label: `Buffer.copy, ${formatBytes(chunk)} chunks, ${formatBytes(memcpy.poolBytes)} pool`, unit: 'B/s', value: summarize(rates) })
    }
    const goals: GoalFigure[] = [...(g1?.figures() ?? []), ...g3Figures, ...(g4b?.figures() ?? []), ...(g5 !== null ? [g5.figure] : [])]
    const report: BenchReport = {
      startedAt: startedAt.toISOString(),
      durationS: (performance.now() - t0) / 1000,
      quick: cfg.quick,
      trials: cfg.trials,
      config: configSummary(cfg),
      machine: machineInfo(loadStart),
      baselines,
      goals,
      extra: {
        ...(g5 !== null ? { g5: { raw: g5.raw, absolutePerPage: g5.absolutePerPage, estimatePerPage: g5.estimatePerPage } } : {}),
        children: startedChildren()
      }
    }
    process.stdout.write(renderReport(report))
    writeReport(cfg.out, report)
    process.stdout.write(`\nJSON: ${cfg.out}\n`)
  } finally {
    rtt?.close()
    stream?.close()
    await peer?.stop()
    await cluster?.stop()
    await g3?.close()
  }
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
let cfg: BenchConfig
try {
  cfg = parseArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`)
  process.exit(2)
}
try {
  await run(cfg)
  if (liveChildren() > 0) progress(`warning: ${liveChildren()} child process(es) still running at exit; killing them`)
  process.exit(0)
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
}

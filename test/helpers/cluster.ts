/** An in-process machine plus the REST-shaped API, for tests. */
import { InProcessCluster, type InProcessOptions } from '../../services/cluster/in-process.js'
import { CoordinatorApi } from '../../services/coordinator/api.js'
import { defaultTopology } from '../../services/coordinator/topology/topology.js'

export interface TestMachine {
  cluster: InProcessCluster
  api: CoordinatorApi
  close: () => Promise<void>
}

export async function machine (opts: InProcessOptions & { gpus?: number, vram?: number } = {}): Promise<TestMachine> {
  const topology = opts.topology ?? defaultTopology(opts.gpus ?? 1, opts.vram ?? 64 * 1024 * 1024)
  const cluster = await InProcessCluster.start({ checkChunks: true, ...opts, topology })
  return { cluster, api: new CoordinatorApi(cluster.coordinator), close: async () => await cluster.close() }
}

export const P = 4096
export const MiB = 1024 * 1024

export function b64 (buf: Uint8Array): string {
  return Buffer.from(buf).toString('base64')
}

export function unb64 (s: unknown): Buffer {
  return Buffer.from(s as string, 'base64')
}

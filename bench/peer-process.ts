/** Starts the baseline peer (peer.ts) as a child process and learns its ports. */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { spawnNode, stopChild, type Child } from './processes.js'

const here = dirname(fileURLToPath(import.meta.url))

export interface Peer { wsPort: number, tcpPort: number, child: Child, stop: () => Promise<void> }

export async function startPeer (timeoutMs = 10_000): Promise<Peer> {
  const child = spawnNode('peer', join(here, 'peer.js'), [])
  try {
    const ports = await new Promise<{ ws: number, tcp: number }>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`bench peer did not start in ${timeoutMs} ms\n${child.output()}`)) }, timeoutMs)
      child.proc.once('message', (m) => { clearTimeout(timer); resolve(m as { ws: number, tcp: number }) })
      void child.exited.then((code) => { clearTimeout(timer); reject(new Error(`bench peer exited (${code})\n${child.output()}`)) })
    })
    return { wsPort: ports.ws, tcpPort: ports.tcp, child, stop: async () => { await stopChild(child) } }
  } catch (err) {
    await stopChild(child)
    throw err
  }
}

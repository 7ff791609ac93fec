/**
 * The WebSocket endpoint GPU processes connect to (/v1/gpu-link). Each
 * accepted socket becomes a Connection handed to the coordinator, which
 * waits for it to register. Anything else asking to upgrade is refused.
 */
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createWsServer, wsConnection } from '../../../shared/transport/ws.js'
import type { Coordinator } from '../coordinator.js'

export const GPU_LINK_PATH = '/v1/gpu-link'

export function acceptGpuLinks (app: FastifyInstance, coordinator: Coordinator): void {
  const wss = createWsServer()
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== GPU_LINK_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const label = `gpu-link ${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`
      coordinator.attachGpu(wsConnection(ws, label))
    })
  })
  app.addHook('preClose', async () => {
    for (const ws of wss.clients) ws.close(1001, 'coordinator shutting down')
    await new Promise<void>((resolve) => { wss.close(() => { resolve() }) })
  })
}

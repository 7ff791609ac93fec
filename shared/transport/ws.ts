/**
 * Connection over a real WebSocket (the `ws` package). Every frame is binary
 * (codec.ts); text frames are malformed. Clients use an all-zero mask, which
 * ws recognises and skips: masking protects browsers behind proxies, not two
 * processes on loopback, and it would otherwise cap page traffic from GPU to
 * coordinator at JavaScript XOR speed.
 */
import WebSocket, { WebSocketServer } from 'ws'
import type { Connection, ConnectionEvents, OutMessage } from './types.js'
import { decodeFrame, encodeFrame } from './codec.js'
import { svmError } from '../errors.js'

export const WS_MAX_PAYLOAD = 256 * 1024 * 1024

export function consumed (batch: readonly OutMessage[]): void {
  for (const m of batch) m.onConsumed?.()
}

const noopHandlers: ConnectionEvents = { message: () => {}, malformed: () => {}, close: () => {} }

class WsConnection implements Connection {
  readonly label: string
  private handlers: ConnectionEvents = noopHandlers
  private isClosed = false

  constructor (private readonly socket: WebSocket, label: string) {
    this.label = label
    socket.binaryType = 'nodebuffer'
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        this.handlers.malformed('text frame (the protocol is binary frames only)')
        return
      }
      const decoded = decodeFrame(data)
      if (!decoded.ok) {
        this.handlers.malformed(decoded.reason)
        return
      }
      this.handlers.message(decoded.batch)
    })
    socket.on('close', (code: number, reason: Buffer) => {
      this.markClosed(`socket closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`)
    })
    socket.on('error', (err: Error) => {
      this.markClosed(`socket error: ${err.message}`)
    })
  }

  get closed (): boolean {
    return this.isClosed
  }

  setHandlers (handlers: ConnectionEvents): void {
    this.handlers = handlers
  }

  send (batch: readonly OutMessage[]): boolean {
    if (this.isClosed || this.socket.readyState !== WebSocket.OPEN) {
      consumed(batch)
      return false
    }
    this.socket.send(encodeFrame(batch), { binary: true })
    consumed(batch) // encoding copied the data
    return true
  }

  close (reason = 'closed'): void {
    if (this.isClosed) return
    this.socket.close(1000, reason.slice(0, 120))
    this.markClosed(reason)
  }

  private markClosed (reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    this.handlers.close(reason)
  }
}

export function wsConnection (socket: WebSocket, label: string): Connection {
  return new WsConnection(socket, label)
}

/** A WebSocket server that hands each accepted socket over as a Connection. */
export function createWsServer (): WebSocketServer {
  return new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: WS_MAX_PAYLOAD })
}

export function connectWs (url: string, label: string, timeoutMs = 5000): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: WS_MAX_PAYLOAD,
      handshakeTimeout: timeoutMs,
      generateMask: (mask: Buffer) => { mask.fill(0) }
    })
    const onError = (err: Error): void => {
      socket.removeAllListeners()
      socket.on('error', () => {})
      reject(svmError('ENOLINK', `cannot connect to ${url}: ${err.message}`))
    }
    socket.once('error', onError)
    socket.once('open', () => {
      socket.off('error', onError)
      resolve(wsConnection(socket, label))
    })
  })
}

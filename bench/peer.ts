/**
 * The far end of the baselines, run as its own Node process: a raw `ws`
 * server that echoes every message (round-trip time) and a raw TCP sink
 * (stream throughput). A sink round starts with an 8-byte little-endian byte
 * count; once that many bytes have arrived the sink answers with one byte.
 * Both listen on 127.0.0.1 and an ephemeral port, reported to the parent over
 * IPC as { ws, tcp }. The process exits when the IPC channel closes.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { WebSocketServer } from 'ws'

const ACK = Buffer.from([0x6b])

function sink (sock: Socket): void {
  sock.setNoDelay(true)
  let header = Buffer.alloc(0)
  let need = -1
  sock.on('data', (buf: Buffer) => {
    let b = buf
    while (b.length > 0) {
      if (need < 0) {
        const take = Math.min(8 - header.length, b.length)
        header = Buffer.concat([header, b.subarray(0, take)])
        b = b.subarray(take)
        if (header.length === 8) {
          need = Number(header.readBigUInt64LE(0))
          header = Buffer.alloc(0)
        }
      } else {
        const take = Math.min(need, b.length)
        need -= take
        b = b.subarray(take)
      }
      if (need === 0) {
        need = -1
        sock.write(ACK)
      }
    }
  })
  sock.on('error', () => {})
}

const tcp = createServer(sink)
await new Promise<void>((resolve) => { tcp.listen(0, '127.0.0.1', resolve) })

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer, isBinary: boolean) => { ws.send(data, { binary: isBinary }) })
  ws.on('error', () => {})
})
await new Promise<void>((resolve) => { wss.once('listening', resolve) })

process.on('disconnect', () => { process.exit(0) })
process.send?.({ ws: (wss.address() as AddressInfo).port, tcp: (tcp.address() as AddressInfo).port })

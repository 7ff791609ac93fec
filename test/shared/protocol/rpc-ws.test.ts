/**
 * RpcPeer over a real WebSocket on 127.0.0.1: hostile frames from a plain
 * `ws` client (text frames, truncated binary frames, bad headers, garbage
 * envelopes) are rejected and counted by the server-side peer, which keeps
 * answering that client and others.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import { RpcPeer } from '../../../shared/protocol/rpc.js'
import { connectWs, createWsServer, wsConnection } from '../../../shared/transport/ws.js'
import { decodeFrame, encodeFrame } from '../../../shared/transport/codec.js'
import { copyFromPayload } from '../../../shared/transport/payload.js'
import { SvmError } from '../../../shared/errors.js'
import { ClientOut, None, ServerIn, serve, type Client, type Server } from './rpc-fixtures.js'

function rawFrame (header: string, payload: Buffer = Buffer.alloc(0), lengthOverride?: number): Buffer {
  const h = Buffer.from(header, 'utf8')
  const f = Buffer.alloc(4 + h.byteLength + payload.byteLength)
  f.writeUInt32LE(lengthOverride ?? h.byteLength, 0)
  h.copy(f, 4)
  payload.copy(f, 4 + h.byteLength)
  return f
}

async function until (cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('hostile frames over a real WebSocket', async (t) => {
  const server = http.createServer()
  const wss = createWsServer()
  const peers: Server[] = []
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const peer: Server = new RpcPeer(wsConnection(ws, `client${peers.length}`), { outMethods: None, inMethods: ServerIn })
      serve(peer)
      peers.push(peer)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`
  t.teardown(async () => {
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  // A plain ws client sending whatever it likes.
  const raw = new WebSocket(url, { perMessageDeflate: false })
  const inbox: unknown[] = []
  raw.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) { inbox.push({ text: data.toString() }); return }
    const d = decodeFrame(data)
    if (d.ok) for (const m of d.batch) inbox.push(m.env)
    else inbox.push({ undecodable: d.reason })
  })
  await new Promise<void>((resolve, reject) => { raw.once('open', () => resolve()); raw.once('error', reject) })
  await until(() => peers.length === 1, 'the server to accept the raw client')
  const victim = peers[0] as Server

  const valid = encodeFrame([{ env: { t: 'q', id: 70, m: 'reverse', p: {} }, data: [new Uint8Array([1, 2, 3, 4])] }])
  const hostile: Array<[string, Buffer | string, boolean]> = [
    ['text frame', 'hello', false],
    ['text frame holding JSON', '[{"t":"q","id":1,"m":"echo","p":{"x":1}}]', false],
    ['empty binary frame', Buffer.alloc(0), true],
    ['three bytes', Buffer.from([1, 0, 0]), true],
    ['header length beyond the frame', rawFrame('[]', Buffer.alloc(0), 1000), true],
    ['header length 2^32-1', rawFrame('[]', Buffer.alloc(0), 0xffffffff), true],
    ['non-JSON header', rawFrame('{{{{'), true],
    ['header is not an array', rawFrame('{"t":"q","id":2,"m":"echo","p":{"x":1}}'), true],
    ['$b out of bounds', rawFrame('[{"t":"q","id":3,"m":"reverse","p":{},"$b":[0,99]}]', Buffer.alloc(4)), true],
    ['negative $b', rawFrame('[{"t":"q","id":4,"m":"reverse","p":{},"$b":[-1,2]}]', Buffer.alloc(4)), true],
    ['valid frame truncated in the header', valid.subarray(0, 10), true],
    ['valid frame truncated in the payload', valid.subarray(0, valid.byteLength - 1), true]
  ]
  for (const [, data, binary] of hostile) raw.send(data, { binary })
  // Decodable frames with bad envelopes: each envelope is one rejection.
  raw.send(rawFrame('[null, 42, "x", {"t":"q","id":80,"m":"missing","p":{}}, {"t":"q","id":81,"m":"echo","p":{"x":"no"}}]'), { binary: true })
  // And a good request on the same connection afterwards.
  raw.send(rawFrame('[{"t":"q","id":90,"m":"echo","p":{"x":5}}]'), { binary: true })
  raw.send(valid, { binary: true })

  await until(() => inbox.some((m) => (m as { id?: number }).id === 70), 'the reply to the good requests')
  t.equal(victim.rejected, hostile.length + 5, 'every hostile frame and envelope was counted')
  t.same(inbox.filter((m) => (m as { t?: string }).t === 'e').map((m) => [(m as { id: number }).id, (m as { code: string }).code]),
    [[80, 'E_VALIDATION'], [81, 'E_VALIDATION']], 'bad requests with ids got E_VALIDATION')
  t.same(inbox.find((m) => (m as { id?: number }).id === 90), { t: 'r', id: 90, r: { x: 5 } }, 'the same connection still answers')
  t.notOk(inbox.some((m) => (m as { text?: string }).text !== undefined || (m as { undecodable?: string }).undecodable !== undefined), 'the server only sends valid binary frames')
  t.equal(victim.closed, false, 'the hostile client was not disconnected')

  // A well-formed client beside it.
  const conn = await connectWs(url, 'server')
  const client: Client = new RpcPeer(conn, { outMethods: ClientOut, inMethods: None })
  t.same((await client.request('echo', { x: 41 })).result, { x: 41 }, 'another client is served')
  const rev = await client.request('reverse', {}, { data: [new Uint8Array([9, 8]), new Uint8Array([7])] })
  const bytes = new Uint8Array(rev.data?.length ?? 0)
  if (rev.data !== null) copyFromPayload(rev.data, 0, bytes, 0, bytes.length)
  t.same([...bytes], [7, 8, 9], 'payload chunks travel as binary')
  try {
    await client.request('missing', {})
    t.fail('missing method resolved')
  } catch (err) {
    t.equal((err as SvmError).code, 'EIO', 'the server\'s E_VALIDATION reaches the sender as EIO')
  }
  t.equal(peers.length, 2)
  t.equal(peers[1]?.rejected, 1)

  // Close everything: the server side sees both connections go.
  const closedReasons: string[] = []
  for (const p of peers) p.onClose((r) => closedReasons.push(r))
  raw.close()
  client.close('test over')
  await until(() => closedReasons.length === 2, 'both server-side peers to see the close')
  t.equal(victim.closed, true)
  t.equal(peers[1]?.closed, true)
  t.equal(client.closed, true)
})

t.test('connectWs to a port nobody listens on fails with ENOLINK', async (t) => {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  try {
    await connectWs(`ws://127.0.0.1:${port}/`, 'nobody', 1000)
    t.fail('connected to a closed port')
  } catch (err) {
    t.ok(err instanceof SvmError, 'an SvmError')
    t.equal((err as SvmError).code, 'ENOLINK')
  }
})

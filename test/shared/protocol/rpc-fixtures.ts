/**
 * Method tables and a peer pair for the RpcPeer tests. The server's and the
 * client's views of the same method can differ, as they would between two
 * builds: 'bad' returns anything on the server but the client expects
 * { x: integer }; 'missing' is not served at all; 'unhandled' is in the
 * server's table but has no handler.
 */
import { Type } from '@sinclair/typebox'
import { RpcPeer } from '../../../shared/protocol/rpc.js'
import { createMemoryPair, type MemoryConnection, type MemoryPairOptions } from '../../../shared/transport/memory.js'
import { Scheduler } from '../../../shared/transport/scheduler.js'
import type { Connection } from '../../../shared/transport/types.js'
import { copyFromPayload } from '../../../shared/transport/payload.js'
import { svmError, isErrorCode } from '../../../shared/errors.js'
import { deferred, type Deferred } from '../../../shared/util/deadline.js'

const Empty = Type.Object({}, { additionalProperties: false })
const X = Type.Object({ x: Type.Integer() }, { additionalProperties: false })

export const ServerIn = {
  echo: { params: X, result: X },
  /** Replies with the byte count and the request's bytes reversed. */
  reverse: { params: Empty, result: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) },
  fail: { params: Type.Object({ code: Type.String(), async: Type.Boolean(), plain: Type.Optional(Type.Boolean()) }, { additionalProperties: false }), result: Empty },
  hang: { params: Empty, result: Empty },
  bad: { params: Empty, result: Type.Unknown() },
  unhandled: { params: Empty, result: Empty },
  note: { params: X, result: Empty }
} as const

export const ClientOut = {
  ...ServerIn,
  bad: { params: Empty, result: X },
  missing: { params: Empty, result: Empty }
} as const

export const None = {} as const

export type Server = RpcPeer<typeof None, typeof ServerIn>
export type Client = RpcPeer<typeof ClientOut, typeof None>

export interface Counting {
  conn: Connection
  /** Number of messages in each send, in order. */
  sends: number[]
}

/** Wraps a connection to count its sends. */
export function counting (inner: Connection): Counting {
  const sends: number[] = []
  const conn: Connection = {
    get label () { return inner.label },
    get closed () { return inner.closed },
    send: (batch) => { sends.push(batch.length); return inner.send(batch) },
    setHandlers: (h) => { inner.setHandlers(h) },
    close: (reason) => { inner.close(reason) }
  }
  return { conn, sends }
}

export interface ServerState {
  hangs: Array<Deferred<void>>
  notes: number[]
}

/** Installs the handlers of ServerIn (all but 'unhandled'). */
export function serve (server: Server): ServerState {
  const state: ServerState = { hangs: [], notes: [] }
  server.handle('echo', (p) => ({ result: { x: p.x } }))
  server.handle('reverse', (_p, data) => {
    const n = data?.length ?? 0
    const bytes = new Uint8Array(n)
    if (data !== null) copyFromPayload(data, 0, bytes, 0, n)
    bytes.reverse()
    // Reply in two chunks to exercise multi-chunk payloads.
    const half = n >> 1
    return { result: { n }, data: n === 0 ? undefined : [bytes.subarray(0, half), bytes.subarray(half)] }
  })
  server.handle('fail', async (p) => {
    const err = p.plain === true ? new Error(`plain ${p.code}`) : svmError(isErrorCode(p.code) ? p.code : 'EIO', `failed with ${p.code}`, { opIndex: 7 })
    if (p.async) {
      await Promise.resolve()
      throw err
    }
    throw err
  })
  server.handle('hang', async () => {
    const d = deferred<void>()
    state.hangs.push(d)
    await d.promise
    return { result: {} }
  })
  server.handle('bad', () => ({ result: { x: 'not an integer', extra: true } }))
  server.handle('note', (p) => { state.notes.push(p.x); return { result: {} } })
  return state
}

export interface Pair {
  scheduler: Scheduler
  client: Client
  server: Server
  clientConn: MemoryConnection
  serverConn: MemoryConnection
  clientSends: number[]
  serverSends: number[]
  state: ServerState
}

export function pair (opts: { seed?: number, defaultTimeoutMs?: number, memory?: MemoryPairOptions } = {}): Pair {
  const scheduler = new Scheduler(opts.seed === undefined ? {} : { seed: opts.seed })
  const [clientConn, serverConn] = createMemoryPair(scheduler, 'client', 'server', opts.memory)
  const c = counting(clientConn)
  const s = counting(serverConn)
  const client: Client = new RpcPeer(c.conn, {
    outMethods: ClientOut,
    inMethods: None,
    ...(opts.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: opts.defaultTimeoutMs } : {})
  })
  const server: Server = new RpcPeer(s.conn, { outMethods: None, inMethods: ServerIn })
  const state = serve(server)
  return { scheduler, client, server, clientConn, serverConn, clientSends: c.sends, serverSends: s.sends, state }
}

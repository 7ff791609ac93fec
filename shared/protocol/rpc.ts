/**
 * Request/response over a Connection, the one messaging layer every process
 * uses (GPU<->coordinator, GPU<->GPU, in-process tests).
 *
 * - Every inbound envelope is checked: the envelope shape by hand, params and
 *   results against compiled TypeBox schemas of the method table. A malformed
 *   or hostile message is answered with E_VALIDATION (when it has an id),
 *   logged, and otherwise ignored; the connection keeps serving.
 * - Every request has a deadline (ETIMEDOUT); a closed connection fails the
 *   requests in flight with ENOLINK.
 * - Errors cross as `{ code, message }` and are rebuilt as SvmError with the
 *   same code, so callers match on code across processes.
 * - Messages queued in the same tick go out as one frame.
 */
import type { Static, TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { SvmError, isErrorCode, svmError } from '../errors.js'
import type { Connection, InMessage, OutMessage } from '../transport/types.js'
import type { Payload } from '../transport/payload.js'
import { type Log, silentLog } from '../util/log.js'

export interface MethodDef { params: TSchema, result: TSchema }
export type MethodTable = Record<string, MethodDef>

export type ParamsOf<T extends MethodTable, K extends keyof T> = Static<T[K]['params']>
export type ResultOf<T extends MethodTable, K extends keyof T> = Static<T[K]['result']>

export interface Reply<R> {
  result: R
  data?: readonly Uint8Array[] | undefined
  /** Called once the data has been consumed by the transport (see OutMessage). */
  onConsumed?: (() => void) | undefined
}
export interface Response<R> { result: R, data: Payload | null }
export type Handler<P, R> = (params: P, data: Payload | null) => Promise<Reply<R>> | Reply<R>

export interface RequestOptions<R = unknown> {
  data?: readonly Uint8Array[] | undefined
  timeoutMs?: number | undefined
  /**
   * Runs synchronously when the reply arrives, before any later message on
   * the connection is dispatched (the awaiting code only resumes after them).
   * What it returns is what the request resolves with; if it throws, the
   * request rejects.
   */
  onReply?: ((r: Response<R>) => Response<R>) | undefined
}

export interface RpcOptions<Out extends MethodTable, In extends MethodTable> {
  /** Methods we call on the peer (their results are validated). */
  outMethods: Out
  /** Methods the peer may call on us (their params are validated). */
  inMethods: In
  log?: Log
  defaultTimeoutMs?: number
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>()
function checkerFor (schema: TSchema): TypeCheck<TSchema> {
  let c = compiled.get(schema)
  if (c === undefined) {
    c = TypeCompiler.Compile(schema)
    compiled.set(schema, c)
  }
  return c
}

/** Compiles every schema of a table now, so no message pays for it later. */
export function precompile (table: MethodTable): void {
  for (const def of Object.values(table)) {
    checkerFor(def.params)
    checkerFor(def.result)
  }
}

function firstError (check: TypeCheck<TSchema>, value: unknown): string {
  const e = check.Errors(value).First()
  return e === undefined ? 'invalid' : `${e.path === '' ? '/' : e.path}: ${e.message}`
}

type Envelope =
  | { t: 'q', id: number, m: string, p: unknown }
  | { t: 'r', id: number, r: unknown }
  | { t: 'e', id: number, code: string, message: string, details?: Record<string, unknown> }
  | { t: 'n', m: string, p: unknown }

function isId (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0
}

function parseEnvelope (env: unknown): Envelope | string {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return 'envelope is not an object'
  const e = env as Record<string, unknown>
  switch (e.t) {
    case 'q':
      if (!isId(e.id)) return 'request without a valid id'
      if (typeof e.m !== 'string') return 'request without a method'
      return { t: 'q', id: e.id, m: e.m, p: e.p }
    case 'n':
      if (typeof e.m !== 'string') return 'notification without a method'
      return { t: 'n', m: e.m, p: e.p }
    case 'r':
      if (!isId(e.id)) return 'reply without a valid id'
      return { t: 'r', id: e.id, r: e.r }
    case 'e':
      if (!isId(e.id)) return 'error reply without a valid id'
      return {
        t: 'e',
        id: e.id,
        code: typeof e.code === 'string' ? e.code : 'EIO',
        message: typeof e.message === 'string' ? e.message : 'remote error',
        ...(e.details !== null && typeof e.details === 'object' && !Array.isArray(e.details) ? { details: e.details as Record<string, unknown> } : {})
      }
    default:
      return 'unknown envelope type'
  }
}

interface Pending {
  method: string
  onReply: ((r: Response<unknown>) => Response<unknown>) | undefined
  resolve: (r: Response<unknown>) => void
  reject: (e: unknown) => void
  /** performance.now() deadline (Infinity: none). */
  deadline: number
  timeoutMs: number
}

/** How often deadlines are checked: one timer per peer, not one per request. */
const SWEEP_MS = 10

export class RpcPeer<Out extends MethodTable, In extends MethodTable> {
  readonly log: Log
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private sweeper: ReturnType<typeof setInterval> | null = null
  private readonly handlers = new Map<string, Handler<unknown, unknown>>()
  private outbox: OutMessage[] = []
  private flushQueued = false
  private readonly closeListeners: Array<(reason: string) => void> = []
  private readonly defaultTimeoutMs: number
  /** Inbound messages rejected as malformed, for metrics and tests. */
  rejected = 0

  constructor (readonly conn: Connection, private readonly opts: RpcOptions<Out, In>) {
    this.log = opts.log ?? silentLog
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 10_000
    precompile(opts.outMethods)
    precompile(opts.inMethods)
    conn.setHandlers({
      message: (batch) => { this.onBatch(batch) },
      malformed: (reason) => {
        this.rejected++
        this.log.warn({ peer: conn.label, reason }, 'rejected malformed frame')
      },
      close: (reason) => { this.onClosed(reason) }
    })
  }

  get closed (): boolean {
    return this.conn.closed
  }

  onClose (listener: (reason: string) => void): void {
    this.closeListeners.push(listener)
  }

  handle<K extends keyof In & string> (method: K, handler: Handler<ParamsOf<In, K>, ResultOf<In, K>>): void {
    this.handlers.set(method, handler as Handler<unknown, unknown>)
  }

  request<K extends keyof Out & string> (
    method: K,
    params: ParamsOf<Out, K>,
    opts: RequestOptions<ResultOf<Out, K>> = {}
  ): Promise<Response<ResultOf<Out, K>>> {
    if (this.conn.closed) return Promise.reject(svmError('ENOLINK', `${method}: connection to ${this.conn.label} is closed`))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs
      this.pending.set(id, {
        method,
        onReply: opts.onReply as ((r: Response<unknown>) => Response<unknown>) | undefined,
        resolve: resolve as (r: Response<unknown>) => void,
        reject,
        deadline: performance.now() + timeoutMs,
        timeoutMs
      })
      if (this.sweeper === null && Number.isFinite(timeoutMs)) this.sweeper = setInterval(() => { this.sweep() }, SWEEP_MS)
      this.enqueue({ env: { t: 'q', id, m: method, p: params }, data: opts.data })
    })
  }

  /** Fails requests past their deadline with ETIMEDOUT; stops when nothing is pending. */
  private sweep (): void {
    const now = performance.now()
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue
      this.pending.delete(id)
      p.reject(svmError('ETIMEDOUT', `${p.method}: ${this.conn.label} did not answer within ${p.timeoutMs} ms`))
    }
    if (this.pending.size === 0) this.stopSweeping()
  }

  private stopSweeping (): void {
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
  }

  notify<K extends keyof Out & string> (method: K, params: ParamsOf<Out, K>, data?: readonly Uint8Array[]): void {
    if (this.conn.closed) return
    this.enqueue({ env: { t: 'n', m: method, p: params }, data })
  }

  close (reason = 'closed'): void {
    this.flush()
    this.conn.close(reason)
  }

  private enqueue (msg: OutMessage): void {
    this.outbox.push(msg)
    if (!this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(() => { this.flush() })
    }
  }

  private flush (): void {
    this.flushQueued = false
    if (this.outbox.length === 0) return
    const batch = this.outbox
    this.outbox = []
    this.conn.send(batch)
  }

  private onBatch (batch: InMessage[]): void {
    for (const msg of batch) {
      try {
        this.onMessage(msg)
      } catch (err) {
        // A handler bug must not take the connection down with it.
        this.log.error({ err, peer: this.conn.label }, 'error while dispatching a message')
      }
    }
  }

  private reject (reason: string, id?: number): void {
    this.rejected++
    this.log.warn({ peer: this.conn.label, reason }, 'rejected malformed message')
    if (id !== undefined) {
      this.enqueue({ env: { t: 'e', id, code: 'E_VALIDATION', message: reason } })
    }
  }

  private onMessage (msg: InMessage): void {
    const env = parseEnvelope(msg.env)
    if (typeof env === 'string') {
      const raw = msg.env as { id?: unknown, t?: unknown } | null
      this.reject(env, raw !== null && typeof raw === 'object' && raw.t === 'q' && isId(raw.id) ? raw.id : undefined)
      return
    }
    switch (env.t) {
      case 'q':
      case 'n':
        this.dispatch(env.t === 'q' ? env.id : undefined, env.m, env.p, msg.data)
        return
      case 'r': {
        const p = this.takePending(env.id)
        if (p === undefined) return
        const def = this.opts.outMethods[p.method] as MethodDef
        const check = checkerFor(def.result)
        if (!check.Check(env.r)) {
          const reason = `malformed reply to ${p.method}: ${firstError(check, env.r)}`
          this.rejected++
          this.log.warn({ peer: this.conn.label, reason }, 'rejected malformed reply')
          p.reject(svmError('EIO', reason))
          return
        }
        let response: Response<unknown> = { result: env.r, data: msg.data }
        if (p.onReply !== undefined) {
          try {
            response = p.onReply(response)
          } catch (err) {
            p.reject(err)
            return
          }
        }
        p.resolve(response)
        return
      }
      case 'e': {
        const p = this.takePending(env.id)
        if (p === undefined) return
        // A peer that rejects our own message as malformed points at a bug on
        // this side, not at whoever asked us: report it as EIO, not E_VALIDATION.
        if (env.code === 'E_VALIDATION') {
          p.reject(new SvmError('EIO', `${p.method} rejected by ${this.conn.label}: ${env.message}`, env.details))
        } else {
          p.reject(new SvmError(isErrorCode(env.code) ? env.code : 'EIO', env.message, env.details))
        }
      }
    }
  }

  private takePending (id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (p === undefined) {
      this.log.debug({ peer: this.conn.label, id }, 'reply for no pending request (late after a deadline?)')
      return undefined
    }
    this.pending.delete(id)
    return p
  }

  private dispatch (id: number | undefined, method: string, params: unknown, data: Payload | null): void {
    const def = Object.hasOwn(this.opts.inMethods, method) ? this.opts.inMethods[method] : undefined
    const handler = this.handlers.get(method)
    if (def === undefined || handler === undefined) {
      this.reject(`unknown method ${JSON.stringify(method).slice(0, 80)}`, id)
      return
    }
    const check = checkerFor(def.params)
    if (!check.Check(params)) {
      this.reject(`invalid params for ${method}: ${firstError(check, params)}`, id)
      return
    }
    let out: Promise<Reply<unknown>> | Reply<unknown>
    try {
      out = handler(params, data)
    } catch (err) {
      this.replyError(id, method, err)
      return
    }
    if (out instanceof Promise) {
      out.then((reply) => { this.replyOk(id, reply) }, (err: unknown) => { this.replyError(id, method, err) })
    } else {
      this.replyOk(id, out)
    }
  }

  private replyOk (id: number | undefined, reply: Reply<unknown>): void {
    if (id === undefined) {
      reply.onConsumed?.()
      return
    }
    this.enqueue({ env: { t: 'r', id, r: reply.result }, data: reply.data, onConsumed: reply.onConsumed })
  }

  private replyError (id: number | undefined, method: string, err: unknown): void {
    if (err instanceof SvmError) {
      if (id !== undefined) {
        this.enqueue({ env: { t: 'e', id, code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } })
      }
      return
    }
    this.log.error({ err, method, peer: this.conn.label }, 'handler failed unexpectedly')
    if (id !== undefined) {
      this.enqueue({ env: { t: 'e', id, code: 'EIO', message: `${method} failed: ${(err as Error)?.message ?? String(err)}` } })
    }
  }

  private onClosed (reason: string): void {
    this.stopSweeping()
    for (const [id, p] of this.pending) {
      this.pending.delete(id)
      p.reject(svmError('ENOLINK', `${p.method}: connection to ${this.conn.label} lost (${reason})`))
    }
    for (const l of this.closeListeners) l(reason)
  }
}

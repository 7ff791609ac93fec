/**
 * Every wait on a peer has a deadline: this wraps a promise so that it
 * rejects with ETIMEDOUT (or the caller's error) when the time is up, and
 * clears its timer either way.
 */
import { SvmError, svmError } from '../errors.js'

export function withDeadline<T> (
  promise: Promise<T>,
  ms: number,
  what: string,
  onTimeout?: () => SvmError
): Promise<T> {
  if (!Number.isFinite(ms)) return promise
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(onTimeout !== undefined ? onTimeout() : svmError('ETIMEDOUT', `${what}: no answer within ${ms} ms`))
    }, ms)
    promise.then(
      (v) => { clearTimeout(timer); resolve(v) },
      (e: unknown) => { clearTimeout(timer); reject(e) }
    )
  })
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A promise with its resolvers exposed (Promise.withResolvers is Node 22). */
export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: unknown) => void
}

export function deferred<T> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

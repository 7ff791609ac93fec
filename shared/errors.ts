/**
 * Stable error codes, shared by every process (in the manner of fastify's
 * lib/errors.js and undici's lib/core/errors.js).
 *
 * Callers match on `code`, never on the class or the message: an error raised
 * in a GPU process crosses the WebSocket as `{ code, message }` and is rebuilt
 * here with the same code on the other side. The codes are the errno names the
 * kernel would return, plus two for malformed requests and unknown ids.
 */

/** errno names the kernel paths we emulate return. */
export const ERRNO_CODES = [
  'EINVAL', 'ENOENT', 'EFAULT', 'EPERM', 'EACCES', 'EBUSY', 'ENOMEM',
  'ENODEV', 'ENOLINK', 'EIO', 'ETIMEDOUT', 'EOPNOTSUPP', 'EAGAIN'
] as const

export const ERROR_CODES = [...ERRNO_CODES, 'E_VALIDATION', 'E_NOT_FOUND'] as const

export type ErrnoCode = typeof ERRNO_CODES[number]
export type ErrorCode = typeof ERROR_CODES[number]

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES)

export function isErrorCode (value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODE_SET.has(value)
}

/**
 * HTTP status for each code, as DESIGN.md §2 fixes it: 400 for malformed
 * input and EINVAL, 404 for unknown ids, 409 for EBUSY, 503 for ENODEV,
 * 422 for every other errno. EOPNOTSUPP and EAGAIN are internal retry signals
 * of the fault handler; should one escape it is reported like any errno.
 */
export function httpStatusFor (code: ErrorCode): number {
  switch (code) {
    case 'E_VALIDATION':
    case 'EINVAL':
      return 400
    case 'E_NOT_FOUND':
      return 404
    case 'EBUSY':
      return 409
    case 'ENODEV':
      return 503
    default:
      return 422
  }
}

/** The one error class. `details` carries extra context, e.g. exec's opIndex. */
export class SvmError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor (code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message)
    this.name = 'SvmError'
    this.code = code
    this.details = details
  }

  get statusCode (): number {
    return httpStatusFor(this.code)
  }
}

export function svmError (code: ErrorCode, message: string, details?: Record<string, unknown>): SvmError {
  return new SvmError(code, message, details)
}

/** Is this an SvmError with one of the given codes? */
export function hasCode (err: unknown, ...codes: ErrorCode[]): err is SvmError {
  return err instanceof SvmError && (codes.length === 0 || codes.includes(err.code))
}

/** Parsing of path ids and query numbers (decimal or 0x hex, below 2^48). */
import { svmError } from '../../../shared/errors.js'
import { ADDRESS_LIMIT } from '../../../shared/units.js'

export function parseId (s: string): number {
  return Number.parseInt(s, 10)
}

export function parseNumber (s: string, what: string): number {
  const n = /^0[xX]/.test(s) ? Number.parseInt(s.slice(2), 16) : Number(s)
  if (!Number.isSafeInteger(n) || n >= ADDRESS_LIMIT) throw svmError('E_VALIDATION', `querystring/${what} must be below 2^48`)
  return n
}

export function parseLength (s: string, what: string, max: number): number {
  const n = parseNumber(s, what)
  if (n <= 0) throw svmError('E_VALIDATION', `querystring/${what} must be positive`)
  if (n > max) throw svmError('E_VALIDATION', `querystring/${what} must be at most ${max}`)
  return n
}

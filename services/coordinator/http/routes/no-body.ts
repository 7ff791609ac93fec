import { svmError } from '../../../../shared/errors.js'

/** POSTs that take no arguments accept no body or {} (DESIGN.md §2). */
export function noBody (body: unknown): void {
  if (body === undefined || body === null) return
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return
  throw svmError('E_VALIDATION', 'body must be empty or {}')
}

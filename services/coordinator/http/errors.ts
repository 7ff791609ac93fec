/**
 * One error shape for every reply: { statusCode, code, error, message } with
 * the stable code of shared/errors.ts (plus context such as exec's opIndex).
 * Malformed input (unparseable JSON, schema violations, bodies too large,
 * unsupported media types) is E_VALIDATION with a 4xx; an unknown route is
 * E_NOT_FOUND. Only a genuine bug produces a 5xx, and it is logged.
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SvmError, httpStatusFor, type ErrorCode } from '../../../shared/errors.js'

export function errorBody (statusCode: number, code: ErrorCode | 'EINTERNAL', message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message, ...extra }
}

/**
 * fastify's frameworkErrors hook: errors found before a route is chosen
 * (FST_ERR_BAD_URL for a bad percent-escape, FST_ERR_MAX_PARAM_LENGTH for a
 * path id longer than the router keeps) would otherwise be sent with
 * fastify's own `code` (and 414 for the latter). Both are malformed
 * requests: 400 E_VALIDATION, like any other malformed path id.
 */
export function frameworkError (err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  void reply.code(400).send(errorBody(400, 'E_VALIDATION', err.message))
}

export function installErrorHandling (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | SvmError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof SvmError) {
      const status = httpStatusFor(err.code)
      const extra = err.details !== undefined ? { ...err.details } : {}
      void reply.code(status).send(errorBody(status, err.code, err.message, extra))
      return
    }
    const fe = err as FastifyError
    if (fe.validation !== undefined) {
      void reply.code(400).send(errorBody(400, 'E_VALIDATION', fe.message))
      return
    }
    const status = fe.statusCode ?? 500
    if (status >= 400 && status < 500) {
      void reply.code(status).send(errorBody(status, 'E_VALIDATION', fe.message))
      return
    }
    req.log.error({ err }, 'unexpected error')
    void reply.code(500).send(errorBody(500, 'EINTERNAL', 'internal error'))
  })
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(errorBody(404, 'E_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`))
  })
}

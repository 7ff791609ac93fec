/**
 * The logging surface core classes accept. A pino logger satisfies it; core
 * code never creates one, so it stays free of I/O and tests stay quiet.
 */
export interface Log {
  debug: (obj: object | string, msg?: string) => void
  info: (obj: object | string, msg?: string) => void
  warn: (obj: object | string, msg?: string) => void
  error: (obj: object | string, msg?: string) => void
  child: (bindings: Record<string, unknown>) => Log
}

const noop = (): void => {}

export const silentLog: Log = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLog
}

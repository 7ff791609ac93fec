/**
 * A minimal client for the coordinator's REST API (DESIGN.md §2): JSON
 * calls, raw-byte memory writes, and errors that carry the status and the
 * body's `code`. Uses fetch, which keeps the connection alive.
 */
export class RestError extends Error {
  constructor (readonly status: number, readonly body: string, what: string) {
    super(`${what} → ${status}: ${body.slice(0, 300)}`)
  }
}

export class Rest {
  constructor (readonly url: string) {}

  async call<T = unknown> (method: string, path: string, body?: unknown): Promise<T> {
    const r = await fetch(this.url + path, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {})
    })
    const text = await r.text()
    if (!r.ok) throw new RestError(r.status, text, `${method} ${path}`)
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  async writeMemory (pid: number, addr: number, data: Uint8Array): Promise<void> {
    const path = `/v1/processes/${pid}/memory?addr=${addr}`
    const r = await fetch(this.url + path, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } })
    if (!r.ok) throw new RestError(r.status, await r.text(), `PUT ${path}`)
    await r.arrayBuffer()
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function forEachLimit<T> (items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

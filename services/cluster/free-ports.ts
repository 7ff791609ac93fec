/**
 * A block of consecutive free TCP ports on 127.0.0.1 (coordinator P, GPUs
 * P+1+i): P comes from the OS, the next ones are checked free.
 */
import { type AddressInfo, createServer } from 'node:net'

function listenOn (port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => { resolve(null) })
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as AddressInfo).port
      s.close(() => { resolve(got) })
    })
  })
}

/** A port P such that P ... P + count - 1 are free. */
export async function freePortBlock (count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = await listenOn(0)
    if (base === null || base + count - 1 > 65535) continue
    let ok = true
    for (let i = 1; i < count && ok; i++) ok = (await listenOn(base + i)) !== null
    if (ok) return base
  }
  throw new Error(`no block of ${count} free loopback ports`)
}

/** Polls a coordinator's /readyz until 200; gives up when `dead()` reports a reason or time is up. */
export async function waitReady (url: string, timeoutMs: number, dead: () => string | null = () => null): Promise<void> {
  const t0 = Date.now()
  for (;;) {
    const why = dead()
    if (why !== null) throw new Error(why)
    try {
      if ((await fetch(`${url}/readyz`)).ok) return
    } catch {}
    if (Date.now() - t0 > timeoutMs) throw new Error(`cluster at ${url} not ready after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

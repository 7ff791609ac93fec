/** A block of consecutive free TCP ports on 127.0.0.1 (coordinator P, GPUs P+1+i). */
import { createServer } from 'node:net'

function bindable (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => { resolve(false) })
    s.listen(port, '127.0.0.1', () => { s.close(() => { resolve(true) }) })
  })
}

export async function freePortBlock (count: number, lo = 20000, hi = 60000): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = lo + Math.floor(Math.random() * (hi - lo - count))
    let ok = true
    for (let i = 0; i < count && ok; i++) ok = await bindable(base + i)
    if (ok) return base
  }
  throw new Error(`no block of ${count} free ports found`)
}

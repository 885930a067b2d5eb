/** Test ports. */
import { createServer } from 'node:net'

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort (host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

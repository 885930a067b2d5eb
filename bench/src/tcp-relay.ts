/**
 * The floor of any forwarder: a raw TCP relay (Node `pipe()` both ways, TCP_NODELAY on both
 * sides). It knows nothing of HTTP or RTSP, so a tunnel's GET and POST each get their own
 * upstream connection and the backend pairs them.
 */
import net from 'node:net'

export function startTcpRelay (
  opts: { port: number, host?: string, targetPort: number, targetHost?: string }
): Promise<net.Server> {
  const server = net.createServer(c => {
    c.setNoDelay(true)
    const u = net.connect({ port: opts.targetPort, host: opts.targetHost ?? '127.0.0.1', noDelay: true })
    c.on('error', () => u.destroy())
    u.on('error', () => c.destroy())
    c.pipe(u)
    u.pipe(c)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: opts.port, host: opts.host ?? '127.0.0.1', backlog: 4096 }, () => resolve(server))
  })
}

/**
 * The origin's own Prometheus metrics, in its own Registry (never the global one), so a
 * balancer can read a backend's load from the backend itself.
 */
import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Registry } from 'prom-client'

export class OriginMetrics {
  readonly registry = new Registry()
  readonly sessions = new Gauge({
    name: 'tunnelgate_origin_sessions', help: 'RTSP sessions open on the origin', registers: [this.registry]
  })

  readonly bytesSent = new Counter({
    name: 'tunnelgate_origin_bytes_sent_total',
    help: 'RTP and RTCP bytes sent (with interleaved headers on TCP)',
    registers: [this.registry]
  })

  readonly packetsSent = new Counter({
    name: 'tunnelgate_origin_packets_sent_total', help: 'RTP packets sent', registers: [this.registry]
  })

  readonly latePackets = new Counter({
    name: 'tunnelgate_origin_late_packets_total',
    help: 'RTP packets sent more than 50 ms after their due time',
    registers: [this.registry]
  })

  readonly droppedPackets = new Counter({
    name: 'tunnelgate_origin_dropped_packets_total',
    help: 'live RTP packets not sent to a viewer whose TCP send buffer was over the cap',
    registers: [this.registry]
  })

  readonly requests = new Counter({
    name: 'tunnelgate_origin_requests_total',
    help: 'RTSP requests answered',
    labelNames: ['method', 'status'] as const,
    registers: [this.registry]
  })

  readonly connections = new Gauge({
    name: 'tunnelgate_origin_connections', help: 'RTSP TCP connections open on the origin', registers: [this.registry]
  })
}

/** Serve GET /metrics on a plain node:http server; resolves with the bound port. */
export function serveMetrics (
  metrics: OriginMetrics, port: number, host: string | undefined
): Promise<{ server: Server, port: number }> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?') === true)) {
      metrics.registry.metrics().then((body) => {
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType })
        res.end(body)
      }, (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' })
        res.end(String(err))
      })
      return
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end('not found\n')
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const addr = server.address()
      resolve({ server, port: typeof addr === 'object' && addr !== null ? addr.port : port })
    })
  })
}

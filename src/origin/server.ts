/**
 * The origin server: a net.Server for RTSP, a shared UDP RTP/RTCP port pair, live channels
 * by stream, the session-timeout sweep, and the optional /metrics HTTP server.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import type { Server as HttpServer } from 'node:http'
import { hostname } from 'node:os'
import { LiveChannel } from './live-channel.js'
import type { MediaCatalog } from './media-catalog.js'
import type { MediaSource } from './media-source.js'
import { OriginMetrics, serveMetrics } from './metrics.js'
import type { OriginLogger } from './options.js'
import type { UdpPair } from './output.js'
import { RtspConnection, type OriginSession, type ServerContext } from './rtsp-session.js'

export interface ServerConfig {
  port: number
  host?: string
  metricsPort?: number
  sessionTimeoutSec: number
  stamp: boolean
  maxBacklog: number
  log: OriginLogger
}

export class OriginServer {
  readonly metrics = new OriginMetrics()
  readonly #catalog: MediaCatalog
  readonly #cfg: ServerConfig
  readonly #conns = new Set<RtspConnection>()
  readonly #live = new Map<string, LiveChannel>()
  readonly #udpClients = new Map<string, OriginSession>()
  #server: Server | undefined
  #http: HttpServer | undefined
  #udp: UdpPair | undefined
  #sweep: NodeJS.Timeout | undefined
  port = 0
  metricsPort: number | undefined

  constructor (catalog: MediaCatalog, cfg: ServerConfig) {
    this.#catalog = catalog
    this.#cfg = cfg
  }

  async start (): Promise<void> {
    this.#udp = await bindUdpPair(this.#cfg.host).catch((err: unknown) => {
      this.#cfg.log.warn({ err: String(err) }, 'origin: no UDP ports; RTP over UDP disabled')
      return undefined
    })
    if (this.#udp !== undefined) {
      const onRtcp = (_msg: Buffer, rinfo: { address: string, port: number }): void => {
        const s = this.#udpClients.get(`${rinfo.address.replace(/^::ffff:/, '')}:${rinfo.port}`)
        if (s !== undefined) s.lastSeen = Date.now()
      }
      this.#udp.rtp.on('message', onRtcp)
      this.#udp.rtcp.on('message', onRtcp)
    }
    const ctx: ServerContext = {
      catalog: this.#catalog,
      metrics: this.metrics,
      udp: this.#udp,
      log: this.#cfg.log,
      sessionTimeoutSec: this.#cfg.sessionTimeoutSec,
      stamp: this.#cfg.stamp,
      maxBacklog: this.#cfg.maxBacklog,
      cname: `tunnelgate-origin@${hostname()}`,
      udpClients: this.#udpClients,
      liveChannel: (src) => this.#channel(src)
    }
    const server = createServer((socket) => {
      const conn = new RtspConnection(socket, ctx)
      this.#conns.add(conn)
      this.metrics.connections.inc()
      socket.once('close', () => { this.#conns.delete(conn); this.metrics.connections.dec() })
    })
    server.maxConnections = 10000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#cfg.port, this.#cfg.host, () => { server.off('error', reject); resolve() })
    })
    this.#server = server
    const addr = server.address()
    this.port = typeof addr === 'object' && addr !== null ? addr.port : this.#cfg.port
    if (this.#cfg.metricsPort !== undefined) {
      const m = await serveMetrics(this.metrics, this.#cfg.metricsPort, this.#cfg.host)
      this.#http = m.server
      this.metricsPort = m.port
    }
    const every = Math.max(100, Math.min(1000, this.#cfg.sessionTimeoutSec * 250))
    this.#sweep = setInterval(() => {
      const now = Date.now()
      for (const c of this.#conns) c.checkTimeouts(now)
    }, every)
    this.#sweep.unref()
  }

  #channel (src: MediaSource): LiveChannel {
    let ch = this.#live.get(src.name)
    if (ch === undefined) {
      ch = new LiveChannel(src, {
        metrics: this.metrics,
        maxBacklog: this.#cfg.maxBacklog,
        stamp: this.#cfg.stamp,
        cname: `tunnelgate-origin@${hostname()}`,
        onError: (err) => this.#cfg.log.error(
          { stream: src.name, err: err instanceof Error ? err.message : String(err) }, 'origin: live channel failed'
        )
      })
      this.#live.set(src.name, ch)
    }
    return ch
  }

  async close (): Promise<void> {
    if (this.#sweep !== undefined) clearInterval(this.#sweep)
    for (const c of this.#conns) c.close()
    for (const ch of this.#live.values()) ch.stop()
    await Promise.all([
      new Promise<void>((resolve) => this.#server === undefined ? resolve() : this.#server.close(() => resolve())),
      new Promise<void>((resolve) => {
        if (this.#http === undefined) { resolve(); return }
        this.#http.closeAllConnections()
        this.#http.close(() => resolve())
      })
    ])
    if (this.#udp !== undefined) {
      this.#udp.rtp.close()
      this.#udp.rtcp.close()
    }
  }
}

function bindUdp (port: number, host: string | undefined): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket(host?.includes(':') === true ? 'udp6' : 'udp4')
    s.once('error', (e) => { s.close(); reject(e) })
    s.bind(port, host, () => { s.removeAllListeners('error'); s.on('error', () => {}); resolve(s) })
  })
}

/** An even RTP port and the next odd RTCP port (a few attempts, then any two ports). */
async function bindUdpPair (host: string | undefined): Promise<UdpPair> {
  for (let i = 0; i < 20; i++) {
    const rtp = await bindUdp(0, host)
    const p = rtp.address().port
    if (p % 2 !== 0 || p === 65535) { rtp.close(); continue }
    try {
      const rtcp = await bindUdp(p + 1, host)
      return { rtp, rtcp, ports: [p, p + 1] }
    } catch { rtp.close() }
  }
  const rtp = await bindUdp(0, host)
  const rtcp = await bindUdp(0, host)
  return { rtp, rtcp, ports: [rtp.address().port, rtcp.address().port] }
}

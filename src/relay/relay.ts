/**
 * The relay: where both legs of a tunnel meet. It owns the cookie registry (GET first or POST
 * first, pairing window, duplicates), builds a ProxySession per tunnel and holds the backend pool.
 * It takes sockets whose HTTP head has already been read (by the portal's front door, in this
 * process or handed over from another), so it never runs Node's HTTP parser on a tunnel leg.
 */
import type net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { GatewayMetrics } from '../metrics.js'
import { BackendPool } from '../backends/pool.js'
import { LiveRegistry } from './live/registry.js'
import { buildHttpError, buildTunnelGetReply, type HttpHead } from '../tunnel/codec/http-head.js'
import { getHeader } from '../tunnel/codec/rtsp-message.js'
import { RtspDemuxer } from '../tunnel/codec/demux.js'
import { HttpTunnel, writeCorked, type PostSocket } from '../tunnel/http-tunnel.js'
import { openWebSocketSession } from '../tunnel/websocket-client.js'
import { plainAddress } from '../portal/access.js'
import { countRefusal, HTTP_503, legLimitHit, PerIpCounts, RTSP_503, type LimitHit } from './leg-counts.js'
import { answerAndClose } from '../tunnel/answer-and-close.js'
import { ProxySession, type ClientSide, type SessionSnapshot, type SessionTally } from '../tunnel/proxy-session.js'
import type { AccessSink } from '../ops/access-log.js'
import { accessRecord, basicUser, ClosedTotals, summarize, type RelaySummary } from '../ops/relay-view.js'

const userOf = (user: string | undefined): { user?: string } => user === undefined ? {} : { user }

interface PendingPost {
  socket: PostSocket
  head: HttpHead
  /** Client address (for the per-address unpaired count and requireSameClientIp). */
  ip: string
  initial: Buffer[]
  timer: NodeJS.Timeout
}

export interface LegInfo {
  clientAddress: string
  /** performance.now() when the leg's connection was accepted. */
  acceptedAt: number
  /** Stream path a token bound the tunnel to. */
  allowedPath?: string
  /** The gateway-authenticated user of a GET (gateway auth on). */
  user?: string
}

const GET_REPLY = buildTunnelGetReply()
/** Portal → relay POST hand-shake (relay nodes only): "attach only if the GET is here". */
export const PAIR_HEADER = 'X-Tunnelgate-Pair'
export const POST_KNOWN = 'HTTP/1.0 202 Accepted\r\nX-Tunnelgate-Pair: attached\r\n\r\n'
export const POST_UNKNOWN = 'HTTP/1.0 421 Misdirected Request\r\nX-Tunnelgate-Pair: unknown\r\nContent-Length: 0\r\n\r\n'

/** Counts per client address (entries removed at zero, so the map stays as small as the live set). */
export class Relay {
  /** Replaced by reconfigure(); sessions keep the config they started with. */
  config: Config
  readonly metrics: GatewayMetrics
  readonly pool: BackendPool
  /** Live fan-out paths of this relay (docs/live-fanout.md). */
  readonly live: LiveRegistry
  readonly #log: Logger
  readonly #tunnels = new Map<string, HttpTunnel>()
  readonly #pendingPosts = new Map<string, PendingPost[]>()
  readonly #sessions = new Set<ProxySession>()
  #unpaired = 0
  #closing = false
  /** Hardening (issue 5): per-address counts, unpaired GETs, the GET's address per tunnel. */
  readonly #tunnelsByIp = new PerIpCounts()
  readonly #unpairedByIp = new PerIpCounts()
  readonly #unpairedGets = new Map<HttpTunnel, string>()
  readonly #tunnelIp = new WeakMap<HttpTunnel, string>()
  /** Relay name in tunnel listings and access records ('local', 'w0', ...). */
  name = 'local'
  /** Tunnel ids are `${idPrefix}-${n}`: unique per process generation, never the cookie. */
  idPrefix = 'l'
  #nextId = 0
  readonly #closedTotals = new ClosedTotals()
  /** Where finished sessions' access records go (null = none). */
  accessSink: AccessSink | null = null
  /** Draining (issue 4): /healthz says so and portals send no new tunnels here; open ones go on. */
  draining = false
  /** Called when a tunnel (GET) ends, with its cookie (workers tell the portal). */
  onTunnelEnd: ((cookie: string) => void) | null = null
  /** Called when any session ends, with its client address (workers tell the portal: per-IP limits). */
  onSessionEnd: ((ip: string) => void) | null = null

  constructor (config: Config, metrics: GatewayMetrics, logger: Logger) {
    this.config = config
    this.metrics = metrics
    this.#log = logger
    this.pool = new BackendPool(config, metrics)
    this.live = new LiveRegistry({ config, pool: this.pool, metrics, logger })
  }

  get activeSessions (): number { return this.#sessions.size }
  get pendingPostCount (): number { let n = 0; for (const l of this.#pendingPosts.values()) n += l.length; return n }
  get tunnelCount (): number { return this.#tunnels.size }
  /** Open sessions per client address (the portal sums these over workers for limits.maxTunnelsPerIp). */
  tunnelsPerIp (): Record<string, number> { return this.#tunnelsByIp.entries() }

  #sessionDeps (): { config: Config, pool: BackendPool, metrics: GatewayMetrics, logger: Logger, live: LiveRegistry } {
    return { config: this.config, pool: this.pool, metrics: this.metrics, logger: this.#log, live: this.live }
  }

  #setUnpaired (delta: number): void {
    this.#unpaired += delta
    this.metrics.unpairedLegs.set(this.#unpaired)
  }

  #tooMany (): boolean {
    const max = this.config.limits.maxTunnels
    if (max > 0 && this.#sessions.size >= max) this.metrics.limitHitsTotal.inc({ limit: 'limits.maxTunnels' })
    return this.#closing || (max > 0 && this.#sessions.size >= max)
  }

  /**
   * A per-address or unpaired-leg limit reached by a new leg from `ip` (null when it may come in);
   * limits.maxTunnels is #tooMany's, checked before this.
   */
  #legLimit (ip: string, unpaired: boolean, tunnel: boolean): LimitHit | null {
    return legLimitHit(this.config.limits, { tunnels: 0, tunnelsFromIp: this.#tunnelsByIp.get(ip), unpaired: this.#unpaired, unpairedFromIp: this.#unpairedByIp.get(ip) }, { tunnel, unpaired })
  }

  #refused (hit: LimitHit, ip: string, leg: string): void { countRefusal(hit, leg, ip, this.metrics, this.#log) }

  /** The GET of `tunnel` got its first POST (or ended unpaired): no longer an unpaired leg. */
  #getPaired (tunnel: HttpTunnel): void {
    const ip = this.#unpairedGets.get(tunnel)
    if (ip === undefined) return
    this.#unpairedGets.delete(tunnel)
    this.#unpairedByIp.add(ip, -1)
    this.#setUnpaired(-1)
  }

  /** With tunnel.requireSameClientIp: a POST from another address than its GET is refused. */
  #mismatch (tunnel: HttpTunnel, socket: PostSocket, ip: string): boolean {
    if (!this.config.tunnel.requireSameClientIp) return false
    const getIp = this.#tunnelIp.get(tunnel)
    if (getIp === undefined || getIp === plainAddress(ip)) return false
    this.metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_CLIENT_MISMATCH' })
    this.metrics.limitHitsTotal.inc({ limit: 'tunnel.requireSameClientIp' })
    this.#log.info({ client: ip, getClient: getIp }, 'POST from another address than its GET refused')
    answerAndClose(socket, buildHttpError(403, 'Forbidden'))
    return true
  }

  /** A tunnel GET whose head was read; `rest` holds bytes that followed the head. */
  acceptGet (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: LegInfo): void {
    this.metrics.legsTotal.inc({ leg: 'get', transport: 'http-tunnel' })
    const live = this.#tunnels.get(cookie)
    if (live !== undefined && !live.closed) {
      // A second GET for a live cookie is dropped; the existing tunnel is untouched.
      this.metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_DUPLICATE_GET' })
      this.#log.info({ client: info.clientAddress }, 'second GET for a live cookie refused')
      socket.destroy()
      return
    }
    if (this.#tooMany()) {
      this.metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_TOO_MANY' })
      answerAndClose(socket, HTTP_503)
      // A portal in front of workers keeps the GET's worker per cookie until it hears of the end.
      this.onTunnelEnd?.(cookie)
      return
    }
    const ip = plainAddress(info.clientAddress)
    const waitingPosts = this.#pendingPosts.get(cookie)
    const hit = this.#legLimit(ip, waitingPosts === undefined, true)
    if (hit !== null) {
      this.#refused(hit, ip, 'get')
      answerAndClose(socket, HTTP_503)
      this.onTunnelEnd?.(cookie)
      return
    }
    socket.write(GET_REPLY)
    const tunnel = new HttpTunnel(cookie, socket, { config: this.config, metrics: this.metrics, logger: this.#log }, () => {
      if (this.#tunnels.get(cookie) === tunnel) this.#tunnels.delete(cookie)
      this.#getPaired(tunnel)
      this.onTunnelEnd?.(cookie)
    })
    this.#tunnels.set(cookie, tunnel)
    this.#tunnelIp.set(tunnel, ip)
    this.#unpairedGets.set(tunnel, ip)
    this.#unpairedByIp.add(ip, 1)
    this.#setUnpaired(1)
    const session = new ProxySession(this.#sessionDeps(), tunnel, {
      transport: 'http-tunnel',
      clientAddress: info.clientAddress,
      userAgent: getHeader(head, 'User-Agent') ?? '',
      entryPath: head.target,
      ...(info.allowedPath === undefined ? {} : { allowedPath: info.allowedPath }),
      startedAt: info.acceptedAt,
      id: this.#newId(),
      relay: this.name,
      ...userOf(info.user ?? (this.config.auth.basic.length > 0 ? basicUser(head.headers) : undefined))
    })
    tunnel.bind(session)
    this.#track(session, ip)
    this.#log.info({ event: 'tunnel-opened', transport: 'http-tunnel', client: info.clientAddress, path: head.target, userAgent: getHeader(head, 'User-Agent') ?? '' }, 'tunnel opened')
    if (rest.length > 0) socket.unshift(rest)
    socket.resume()
    const waiting = this.#pendingPosts.get(cookie)
    if (waiting !== undefined) {
      this.#pendingPosts.delete(cookie)
      for (const p of waiting) {
        clearTimeout(p.timer)
        this.#setUnpaired(-1)
        this.#unpairedByIp.add(p.ip, -1)
        Relay.detachHold(p.socket)
        if (this.#mismatch(tunnel, p.socket, p.ip)) continue
        this.#getPaired(tunnel)
        tunnel.attachPost(p.socket, p.head, Buffer.concat(p.initial))
      }
    }
  }

  /** A tunnel POST whose head was read; `rest` holds body bytes already read. */
  acceptPost (socket: PostSocket, head: HttpHead, cookie: string, rest: Buffer, info: LegInfo): void {
    const tunnel = this.#tunnels.get(cookie)
    // A portal asking "is this cookie's GET here?" (remote-relays.ts, relay nodes only): 202 and the
    // POST is attached, or 421 and nothing happened, so it asks the next relay (owner changes, drains).
    if (this.config.role === 'relay' && getHeader(head, PAIR_HEADER)?.toLowerCase() === 'known-only') {
      if (tunnel === undefined || tunnel.closed) { socket.end(POST_UNKNOWN); return }
      socket.write(POST_KNOWN)
    }
    this.metrics.legsTotal.inc({ leg: 'post', transport: 'http-tunnel' })
    const ip = plainAddress(info.clientAddress)
    if (tunnel !== undefined && !tunnel.closed) {
      if (this.#mismatch(tunnel, socket, ip)) return
      this.#getPaired(tunnel)
      tunnel.attachPost(socket, head, rest) // resumes the socket unless the backend is applying backpressure
      return
    }
    // POST before GET: hold it (paused, bounded) for the pairing window.
    const hit = this.#legLimit(ip, true, false)
    if (hit !== null) {
      this.#refused(hit, ip, 'post')
      socket.destroy()
      return
    }
    this.#unpairedByIp.add(ip, 1)
    // On a relay node the portal has asked the relays first: no relay has this cookie's GET, so it is
    // either a POST-first client (its GET follows within milliseconds) or a leg whose owner changed.
    const orphan = this.config.role === 'relay'
    const pending: PendingPost = {
      socket,
      head,
      ip,
      initial: rest.length > 0 ? [rest] : [],
      timer: setTimeout(() => {
        const list = this.#pendingPosts.get(cookie)
        if (list !== undefined) {
          const i = list.indexOf(pending)
          if (i !== -1) list.splice(i, 1)
          if (list.length === 0) this.#pendingPosts.delete(cookie)
          this.#setUnpaired(-1)
          this.#unpairedByIp.add(ip, -1)
        }
        this.metrics.errorsTotal.inc({ code: orphan ? 'TG_ERR_TUN_ORPHAN_POST' : 'TG_ERR_TUN_PAIRING_TIMEOUT' })
        this.#log.info({ client: info.clientAddress, event: orphan ? 'orphan-post' : 'pairing-timeout', leg: 'post' }, 'POST without GET dropped')
        socket.destroy()
      }, orphan ? Math.min(this.config.tunnel.orphanPostMs, this.config.tunnel.pairingTimeoutMs) : this.config.tunnel.pairingTimeoutMs)
    }
    pending.timer.unref()
    // Hold a bounded amount of early body; a POST that sends more before its GET is dropped.
    let held = rest.length
    socket.on('data', chunk => {
      held += chunk.length
      if (held > this.config.limits.pendingInputBytes) { socket.destroy(); return }
      pending.initial.push(chunk)
    })
    socket.on('error', () => {})
    socket.once('close', () => {
      const list = this.#pendingPosts.get(cookie)
      if (list === undefined) return
      const i = list.indexOf(pending)
      if (i === -1) return
      clearTimeout(pending.timer)
      list.splice(i, 1)
      if (list.length === 0) this.#pendingPosts.delete(cookie)
      this.#setUnpaired(-1)
      this.#unpairedByIp.add(ip, -1)
    })
    socket.resume()
    const list = this.#pendingPosts.get(cookie) ?? []
    list.push(pending)
    this.#pendingPosts.set(cookie, list)
    this.#setUnpaired(1)
  }

  /** Switch a held POST from buffering to the tunnel (remove the holding listeners first). */
  static detachHold (socket: PostSocket): void {
    socket.removeAllListeners('data')
    socket.removeAllListeners('close')
    socket.removeAllListeners('error')
  }

  /** Plain RTSP/TCP on the same port (a client that can reach port 80 but speaks RTSP). */
  acceptRtsp (socket: net.Socket, initial: Buffer, info: LegInfo): void {
    this.metrics.legsTotal.inc({ leg: 'rtsp', transport: 'rtsp' })
    if (this.#tooMany()) {
      this.metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_TOO_MANY' })
      answerAndClose(socket, RTSP_503)
      return
    }
    const ip = plainAddress(info.clientAddress)
    const hit = this.#legLimit(ip, false, true)
    if (hit !== null) {
      this.#refused(hit, ip, 'rtsp')
      answerAndClose(socket, RTSP_503)
      return
    }
    socket.setNoDelay(true)
    const l = this.config.limits
    const demux = new RtspDemuxer({ maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes })
    let closed = false
    const client: ClientSide = {
      write: (buf, done) => socket.write(buf, done),
      writeBoth: (a, b, done) => writeCorked(socket, a, b, done),
      get queued () { return socket.writableLength },
      onDrain: cb => { socket.on('drain', cb) },
      pauseInput: () => { socket.pause() },
      resumeInput: () => { socket.resume() },
      close: () => {
        if (closed) return
        closed = true
        socket.end()
        setTimeout(() => socket.destroy(), 1000).unref()
      }
    }
    const session = new ProxySession(this.#sessionDeps(), client, { transport: 'rtsp', clientAddress: info.clientAddress, userAgent: '', entryPath: '/', startedAt: info.acceptedAt, id: this.#newId(), relay: this.name })
    this.#track(session, ip)
    const onData = (chunk: Buffer): void => {
      for (const u of demux.push(chunk)) {
        if (session.closed) return
        session.handleClientUnit(u)
      }
    }
    socket.on('data', onData)
    socket.on('error', () => {})
    socket.on('close', () => session.clientGone('client-closed'))
    onData(initial)
    socket.resume()
  }

  /**
   * RTSP over WebSocket (the upgrade head read and admitted by a front door): the same limits and
   * the same ProxySession as a tunnel, with a WebSocket client side (websocket-client.ts).
   */
  acceptWebSocket (socket: net.Socket, head: HttpHead, rest: Buffer, info: LegInfo): void {
    this.metrics.legsTotal.inc({ leg: 'websocket', transport: 'websocket' })
    const ip = plainAddress(info.clientAddress)
    const tooMany = this.#tooMany()
    const hit = tooMany ? null : this.#legLimit(ip, false, true)
    if (tooMany || hit !== null) {
      if (hit !== null) this.#refused(hit, ip, 'websocket')
      else this.metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_TOO_MANY' })
      answerAndClose(socket, HTTP_503)
      return
    }
    const session = openWebSocketSession(this.#sessionDeps(), socket, head, rest, {
      clientAddress: info.clientAddress,
      acceptedAt: info.acceptedAt,
      id: this.#newId(),
      relay: this.name,
      ...(info.allowedPath === undefined ? {} : { allowedPath: info.allowedPath }),
      ...(info.user === undefined ? {} : { user: info.user })
    })
    if (session === null) return
    this.#track(session, ip)
    this.#log.info({ event: 'tunnel-opened', transport: 'websocket', client: info.clientAddress, path: info.allowedPath ?? head.target, userAgent: getHeader(head, 'User-Agent') ?? '' }, 'tunnel opened')
  }

  #track (session: ProxySession, ip: string): void {
    this.#sessions.add(session)
    this.#tunnelsByIp.add(ip, 1)
    session.onClose(() => {
      this.#tunnelsByIp.add(ip, -1)
      this.onSessionEnd?.(ip)
      this.#sessions.delete(session)
      const snap = session.snapshot()
      this.#closedTotals.add(snap)
      this.accessSink?.write(accessRecord(snap, session.closeReason, session.outcome))
    })
  }

  #newId (): string { return `${this.idPrefix}-${(++this.#nextId).toString(36)}` }

  /** Open sessions, for the admin API. */
  listTunnels (): SessionSnapshot[] { return [...this.#sessions].map(s => s.snapshot()) }

  /** Close one session by id (TEARDOWN at its backend); false when no such session. */
  kick (id: string): boolean {
    for (const s of this.#sessions) {
      if (s.snapshot().id === id) { s.clientGone('kicked'); return true }
    }
    return false
  }

  /** Counts and byte totals for the status page and the traffic metrics. */
  summary (): RelaySummary {
    const sessions = this.#sessions
    function * tallies (): Generator<SessionTally> { for (const s of sessions) yield s.tally }
    return summarize(this.name, tallies(), this.#closedTotals, this.pendingPostCount)
  }

  /** Swap in a reloaded config: new sessions use it, open ones keep theirs; backends change in place. */
  reconfigure (config: Config): void {
    this.config = config
    this.pool.reconfigure(config)
  }

  /** Stop accepting new tunnels, TEARDOWN and close the ones open after `graceMs`. */
  async close (graceMs = 0): Promise<void> {
    this.#closing = true
    for (const list of this.#pendingPosts.values()) for (const p of list) { clearTimeout(p.timer); p.socket.destroy() }
    this.#pendingPosts.clear()
    this.#setUnpaired(-this.#unpaired)
    for (const t of [...this.#unpairedGets.keys()]) this.#unpairedByIp.add(this.#unpairedGets.get(t)!, -1)
    this.#unpairedGets.clear()
    if (graceMs > 0 && this.#sessions.size > 0) {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, graceMs)
        const check = setInterval(() => { if (this.#sessions.size === 0) { clearTimeout(t); clearInterval(check); resolve() } }, 100)
        t.unref(); check.unref()
      })
    }
    for (const s of [...this.#sessions]) s.clientGone('shutdown')
    this.live.close()
    for (const t of [...this.#tunnels.values()]) t.close()
  }
}

export { buildHttpError }

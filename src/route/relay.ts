/**
 * The relay: where both legs of a tunnel meet. It carries out the decisions of the tunnel pairing
 * (src/tunnel/pairing.ts: GET first or POST first, pairing windows, duplicates, limits) with the
 * sockets and the one timer they need, builds a ProxySession per client connection (tunnel,
 * WebSocket, plain RTSP) and holds the backend pool. It takes sockets whose HTTP head has already
 * been read (by the portal's front door, in this process or handed over from another), so it never
 * runs Node's HTTP parser on a tunnel leg.
 */
import type net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { BackendPool } from '../backends/pool.js'
import { LiveRegistry } from '../live/registry.js'
import { buildTunnelGetReply, type HttpHead } from '../tunnel/codec/http-head.js'
import { getHeader } from '../tunnel/codec/rtsp-message.js'
import { HttpTunnel, type PostSocket } from '../tunnel/http-tunnel.js'
import { RtspClient } from '../tunnel/rtsp-client.js'
import { CLOSING, legRefusal, PerIpCounts, type LegKind, type Refusal } from '../tunnel/leg-limits.js'
import { PAIR_HEADER, Pairing, pairingSettings, POST_KNOWN } from '../tunnel/pairing.js'
import { OutputLedger } from '../session/socket-output.js'
import { contained, reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import { openWebSocketSession } from '../tunnel/websocket-client.js'
import { plainAddress, targetPath } from '../tunnel/codec/access.js'
import { refuseLeg } from './leg-counts.js'
import type { Refusable } from '../tunnel/refuse.js'
import { ProxySession, type SessionDeps, type SessionSnapshot, type SessionTally } from '../session/proxy-session.js'
import type { AccessSink } from './relay-view.js'
import { accessRecord, basicUser, ClosedTotals, summarize, type RelaySummary } from './relay-view.js'

export { PAIR_HEADER, POST_KNOWN, POST_UNKNOWN } from '../tunnel/pairing.js'

const userOf = (user: string | undefined): { user?: string } => user === undefined ? {} : { user }

/** A POST held until its GET comes (the pairing's opaque handle for it). */
interface HeldPost {
  socket: PostSocket
  head: HttpHead
  /** Body bytes read while held (bounded by limits.pendingInputBytes). */
  initial: Buffer[]
  /** A throw in its handlers closes this leg. */
  owner: FaultOwner
  clientAddress: string
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

export class Relay {
  /** Replaced by reconfigure(); sessions keep the config they started with. */
  config: Config
  readonly metrics: GatewayMetrics
  readonly pool: BackendPool
  /** Live fan-out paths of this relay (docs/live-fanout.md). */
  readonly live: LiveRegistry
  /** Bytes queued towards this relay's clients past their high-water marks (limits.clientOutputBytesTotal). */
  readonly output: OutputLedger
  readonly #log: Logger
  readonly #pairing: Pairing<HeldPost>
  /** Open tunnels by cookie, with the pairing's id of their GET. */
  readonly #tunnels = new Map<string, { tunnel: HttpTunnel, id: number }>()
  /** Fires at the pairing's next deadline (null when no leg waits). */
  #pairingTimer: NodeJS.Timeout | null = null
  #pairingTimerAt = Infinity
  readonly #sessions = new Set<ProxySession>()
  #closing = false
  /** Open sessions per client address (limits.maxTunnelsPerIp). */
  readonly #tunnelsByIp = new PerIpCounts()
  /** Relay name in tunnel listings and access records ('local', 'w0', ...). */
  name = 'local'
  /** Tunnel ids are `${idPrefix}-${n}`: unique per process generation, never the cookie. */
  idPrefix = 'l'
  #nextId = 0
  readonly #closedTotals = new ClosedTotals()
  /** Where finished sessions' access records go (null = none). */
  accessSink: AccessSink | null = null
  /** Draining: /healthz says so and portals send no new tunnels here; open ones go on. */
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
    this.output = new OutputLedger(config.limits.clientOutputBytesTotal)
    this.live = new LiveRegistry({ config, pool: this.pool, metrics, logger })
    this.#pairing = new Pairing(pairingSettings(config))
  }

  get activeSessions (): number { return this.#sessions.size }
  get pendingPostCount (): number { return this.#pairing.heldPosts }
  get tunnelCount (): number { return this.#tunnels.size }
  /** Open sessions per client address (the portal sums these over workers for limits.maxTunnelsPerIp). */
  tunnelsPerIp (): Record<string, number> { return this.#tunnelsByIp.entries() }

  #sessionDeps (): SessionDeps & { live: LiveRegistry, output: OutputLedger } {
    return {
      config: this.config,
      pool: this.pool,
      metrics: this.metrics,
      logger: this.#log,
      live: this.live,
      output: this.output
    }
  }

  /** limits.maxTunnels and limits.maxTunnelsPerIp for a leg that opens a session (not a tunnel GET: the pairing's). */
  #sessionRefusal (ip: string): Refusal | null {
    if (this.#closing) return CLOSING
    const counts = { tunnels: this.#sessions.size, tunnelsFromIp: this.#tunnelsByIp.get(ip) }
    return legRefusal(this.config.limits, { ...counts, unpaired: 0, unpairedFromIp: 0 }, 'rtsp', false)
  }

  #refuse (r: Refusal, kind: LegKind, socket: Refusable, client: string): void {
    refuseLeg(r, kind, socket, client, this.metrics, this.#log)
  }

  /**
   * After every change of the pairing: tunnelgate_unpaired_legs, and the timer, which fires at the
   * next deadline and only while a leg waits.
   */
  #pairingChanged (): void {
    this.metrics.unpairedLegs.set(this.#pairing.unpaired)
    const next = this.#pairing.nextDeadline()
    if (next === null) {
      if (this.#pairingTimer !== null) { clearTimeout(this.#pairingTimer); this.#pairingTimer = null }
      this.#pairingTimerAt = Infinity
      return
    }
    // A timer set for a later leg that has since gone fires early and finds nothing: re-armed then.
    if (this.#pairingTimer !== null && this.#pairingTimerAt <= next) return
    if (this.#pairingTimer !== null) clearTimeout(this.#pairingTimer)
    this.#pairingTimerAt = next
    this.#pairingTimer = setTimeout(() => {
      this.#pairingTimer = null
      this.#pairingTimerAt = Infinity
      this.#expire()
    }, Math.max(1, Math.ceil(next - performance.now())))
    this.#pairingTimer.unref()
  }

  /** The pairing windows that ended: each leg closed in its own contained handler. */
  #expire (): void {
    const due = this.#pairing.expire(performance.now())
    for (const g of due.gets) {
      const t = this.#tunnels.get(g.cookie)
      if (t === undefined || t.id !== g.id) continue
      contained(t.tunnel, 'tunnel-pairing-timer', () => t.tunnel.pairingExpired())()
    }
    for (const p of due.posts) {
      contained(p.post.owner, 'pending-post-timer', () => {
        this.metrics.errorsTotal.inc({ code: p.code })
        const orphan = p.code === 'TG_ERR_TUN_ORPHAN_POST'
        const event = orphan ? 'orphan-post' : 'pairing-timeout'
        this.#log.info({ client: p.post.clientAddress, event, leg: 'post' }, 'POST without GET dropped')
        p.post.socket.destroy()
      })()
    }
    this.#pairingChanged()
  }

  /** A tunnel GET whose head was read; `rest` holds bytes that followed the head. */
  acceptGet (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: LegInfo): void {
    this.metrics.legsTotal.inc({ leg: 'get', transport: 'http-tunnel' })
    const ip = plainAddress(info.clientAddress)
    const sessions = { tunnels: this.#sessions.size, tunnelsFromIp: this.#tunnelsByIp.get(ip), closing: this.#closing }
    const d = this.#pairing.offerGet(cookie, ip, performance.now(), sessions)
    if (d.kind === 'refuse') {
      // A duplicate leaves the live tunnel untouched; otherwise a portal in front of workers keeps
      // the GET's worker per cookie until it hears of the end.
      this.#refuse(d, 'get', socket, d.why === 'limit' ? ip : info.clientAddress)
      if (d.why !== 'duplicate') this.onTunnelEnd?.(cookie)
      return
    }
    socket.write(GET_REPLY)
    // The path only: the query may carry a token or an Axis sessioncookie (status views, logs, OPTIONS * routing).
    const entryPath = targetPath(head.target)
    const tunnel = new HttpTunnel(cookie, socket, {
      config: this.config, metrics: this.metrics, logger: this.#log, output: this.output
    }, () => {
      if (this.#tunnels.get(cookie)?.tunnel === tunnel) this.#tunnels.delete(cookie)
      this.#pairing.getClosed(cookie, d.id)
      this.#pairingChanged()
      this.onTunnelEnd?.(cookie)
    })
    this.#tunnels.set(cookie, { tunnel, id: d.id })
    const session = new ProxySession(this.#sessionDeps(), tunnel, {
      transport: 'http-tunnel',
      clientAddress: info.clientAddress,
      userAgent: getHeader(head, 'User-Agent') ?? '',
      entryPath,
      ...(info.allowedPath === undefined ? {} : { allowedPath: info.allowedPath }),
      startedAt: info.acceptedAt,
      id: this.#newId(),
      relay: this.name,
      // A GET let in by a token (allowedPath) never had its Authorization header checked as Basic.
      ...userOf(info.user ??
        (this.config.auth.basic.length > 0 && info.allowedPath === undefined ? basicUser(head.headers) : undefined))
    })
    tunnel.bind(session)
    this.#track(session, ip)
    this.#log.info(
      {
        event: 'tunnel-opened',
        transport: 'http-tunnel',
        client: info.clientAddress,
        path: entryPath,
        userAgent: getHeader(head, 'User-Agent') ?? ''
      },
      'tunnel opened'
    )
    if (rest.length > 0) socket.unshift(rest)
    socket.resume()
    for (const { post, refusal } of d.posts) {
      Relay.detachHold(post.socket)
      if (refusal !== null) this.#refuse(refusal, 'post', post.socket, plainAddress(post.clientAddress))
      else tunnel.attachPost(post.socket, post.head, Buffer.concat(post.initial))
    }
    this.#pairingChanged()
  }

  /** A tunnel POST whose head was read; `rest` holds body bytes already read. */
  acceptPost (socket: PostSocket, head: HttpHead, cookie: string, rest: Buffer, info: LegInfo): void {
    // A portal asking "is this cookie's GET here?" (remote-relays.ts, relay nodes only): 202 and the
    // POST is attached, or 421 and nothing happened, so it asks the next relay (owner changes, drains).
    const askOnly = this.config.role === 'relay' && getHeader(head, PAIR_HEADER)?.toLowerCase() === 'known-only'
    const ip = plainAddress(info.clientAddress)
    // On a relay node the portal has asked the relays first: no relay has this cookie's GET, so a held
    // POST is either a POST-first client (its GET follows within milliseconds) or a leg whose owner changed.
    const owner = legOwner(this.metrics, this.#log, () => socket.destroy(), getHeader(head, 'User-Agent') ?? '')
    const initial = rest.length > 0 ? [rest] : []
    const held: HeldPost = { socket, head, initial, owner, clientAddress: info.clientAddress }
    const d = this.#pairing.offerPost(cookie, ip, performance.now(), held, askOnly)
    if (d.kind === 'refuse' && d.why === 'unknown') { this.#refuse(d, 'post', socket, info.clientAddress); return }
    if (askOnly) socket.write(POST_KNOWN)
    this.metrics.legsTotal.inc({ leg: 'post', transport: 'http-tunnel' })
    if (d.kind === 'refuse') { this.#refuse(d, 'post', socket, ip); return }
    if (d.kind === 'attach') {
      // Resumes the socket unless the backend is applying backpressure.
      this.#tunnels.get(cookie)!.tunnel.attachPost(socket, head, rest)
      this.#pairingChanged()
      return
    }
    // Held (paused, bounded) for its window: a POST that sends more before its GET is dropped.
    let bytes = rest.length
    socket.on('data', contained(owner, 'pending-post-data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > this.config.limits.pendingInputBytes) { socket.destroy(); return }
      held.initial.push(chunk)
    }))
    socket.on('error', () => {})
    socket.once('close', () => { if (this.#pairing.postClosed(held)) this.#pairingChanged() })
    socket.resume()
    this.#pairingChanged()
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
    const ip = plainAddress(info.clientAddress)
    const refused = this.#sessionRefusal(ip)
    if (refused !== null) { this.#refuse(refused, 'rtsp', socket, ip); return }
    const deps = this.#sessionDeps()
    const client = new RtspClient(socket, deps)
    const session = new ProxySession(deps, client, {
      transport: 'rtsp',
      clientAddress: info.clientAddress,
      userAgent: '',
      entryPath: '/',
      startedAt: info.acceptedAt,
      id: this.#newId(),
      relay: this.name
    })
    this.#track(session, ip)
    client.start(session, initial)
  }

  /**
   * RTSP over WebSocket (the upgrade head read and admitted by a front door): the same limits and
   * the same ProxySession as a tunnel, with a WebSocket client side (websocket-client.ts).
   */
  acceptWebSocket (socket: net.Socket, head: HttpHead, rest: Buffer, info: LegInfo): void {
    this.metrics.legsTotal.inc({ leg: 'websocket', transport: 'websocket' })
    const ip = plainAddress(info.clientAddress)
    const refused = this.#sessionRefusal(ip)
    if (refused !== null) { this.#refuse(refused, 'websocket', socket, ip); return }
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
    this.#log.info(
      {
        event: 'tunnel-opened',
        transport: 'websocket',
        client: info.clientAddress,
        path: info.allowedPath ?? targetPath(head.target),
        userAgent: getHeader(head, 'User-Agent') ?? ''
      },
      'tunnel opened'
    )
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
    for (const s of this.#sessions) { if (s.snapshot().id === id) { s.clientGone('kicked'); return true } }
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
    this.#pairing.settings = pairingSettings(config)
    this.pool.reconfigure(config)
  }

  /** Stop accepting new tunnels, TEARDOWN and close the ones open after `graceMs`. */
  async close (graceMs = 0): Promise<void> {
    this.#closing = true
    for (const p of this.#pairing.close()) p.socket.destroy()
    this.#pairingChanged()
    if (graceMs > 0 && this.#sessions.size > 0) {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, graceMs)
        const check = setInterval(() => {
          if (this.#sessions.size === 0) { clearTimeout(t); clearInterval(check); resolve() }
        }, 100)
        t.unref(); check.unref()
      })
    }
    for (const s of [...this.#sessions]) s.clientGone('shutdown')
    this.live.close()
    for (const t of [...this.#tunnels.values()]) t.tunnel.close()
  }
}

/** The fault owner of a leg that has no session yet: a throw closes that leg. */
function legOwner (metrics: GatewayMetrics, log: Logger, destroy: () => void, tag: string): FaultOwner {
  return {
    faultTag: tag,
    fault (err: unknown, where: EntryPoint): void {
      reportFault(metrics, log, where, err)
      destroy()
    }
  }
}

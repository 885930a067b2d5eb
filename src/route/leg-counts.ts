/**
 * Leg limits and refusals where legs are routed: the in-process relay answers its own refusals here
 * (relay.ts), and the two routers, the portal in front of local relay workers (workers.ts) and a
 * portal splicing legs to remote relay nodes (remote-relays.ts), check the limits over their own
 * counts with RoutedLegs. The checks, their order and their codes are the pure ones of
 * src/tunnel/leg-limits.ts: limits.maxTunnels, limits.maxTunnelsPerIp, limits.maxUnpairedLegsPerIp,
 * limits.maxUnpairedLegs. Memory stays bounded: an unpaired leg is counted only once the limits let
 * it in, and every entry expires after its pairing window at the latest.
 */
import type net from 'node:net'
import type { Logger } from 'pino'
import type { GatewayMetrics } from '../core/metrics.js'
import { buildHttpError } from '../tunnel/codec/http-head.js'
import { POST_UNKNOWN } from '../tunnel/pairing.js'
import { legRefusal, PerIpCounts, type LegKind, type LegLimitSettings, type Refusal } from '../tunnel/leg-limits.js'
import { refuseConnection, type Refusable } from '../tunnel/refuse.js'

export { legLimitHit, PerIpCounts, type LegLimitSettings, type LimitHit } from '../tunnel/leg-limits.js'

export const RTSP_503 = 'RTSP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\n\r\n'

/** The answer a refused leg gets (null: it is closed without one). */
function answerOf (r: Refusal, kind: LegKind): string | Buffer | null {
  switch (r.status) {
    case null: return null
    case 403: return buildHttpError(403, 'Forbidden')
    case 421: return POST_UNKNOWN
    case 503: return kind === 'rtsp' ? RTSP_503 : buildHttpError(503, 'Service Unavailable', [['Retry-After', '5']])
  }
}

/**
 * Carry out a refusal: its error code and limit hit counted, its log line, and its answer (HTTP or,
 * for plain RTSP, RTSP 503 + Retry-After; 403; 421), or the leg closed without one.
 * `client`: the leg's address as the log line names it.
 */
export function refuseLeg (
  r: Refusal, kind: LegKind, socket: Refusable, client: string, metrics: GatewayMetrics, log: Logger
): void {
  if (r.code !== null) metrics.errorsTotal.inc({ code: r.code })
  if (r.limit !== null) metrics.limitHitsTotal.inc({ limit: r.limit })
  if (r.why === 'limit') log.info({ client, leg: kind, limit: r.limit }, 'leg refused: limit reached')
  else if (r.why === 'duplicate') log.info({ client }, 'second GET for a live cookie refused')
  else if (r.why === 'mismatch') {
    log.info({ client, getClient: r.getAddress }, 'POST from another address than its GET refused')
  }
  socket.on('error', () => {})
  const answer = answerOf(r, kind)
  if (answer === null) socket.destroy()
  else refuseConnection(socket, answer)
}

interface Unpaired { cookie: string, ip: string, timer: NodeJS.Timeout }

/**
 * Unpaired legs as a front process sees them: GETs without a POST (by cookie) and POSTs without a
 * GET. Each entry ends when its leg pairs, when the caller learns the leg ended, or after its
 * window (`ttlMs`: by then the relay has dropped the unpaired leg, or it paired where this process
 * cannot see it).
 */
export class UnpairedLegs {
  readonly #gets = new Map<string, Unpaired>()
  readonly #posts = new Map<string, Set<Unpaired>>()
  readonly #byIp = new PerIpCounts()
  /** Called with the new total after every change. */
  onChange: ((n: number) => void) | null = null

  get size (): number { return this.#byIp.total }
  from (ip: string): number { return this.#byIp.get(ip) }
  hasGet (cookie: string): boolean { return this.#gets.has(cookie) }
  hasPosts (cookie: string): boolean { return this.#posts.has(cookie) }

  /** A GET whose cookie has no POST yet (a second one for the same cookie is not counted again). */
  addGet (cookie: string, ip: string, ttlMs: number): void {
    if (this.#gets.has(cookie)) return
    const e: Unpaired = { cookie, ip, timer: setTimeout(() => { this.getPaired(cookie, e) }, ttlMs) }
    e.timer.unref()
    this.#gets.set(cookie, e)
    this.#change(ip, 1)
  }

  /** The GET of `cookie` got a POST, or ended: no longer unpaired (only entry `only`, when given). */
  getPaired (cookie: string, only?: Unpaired): void {
    const e = this.#gets.get(cookie)
    if (e === undefined || (only !== undefined && e !== only)) return
    clearTimeout(e.timer)
    this.#gets.delete(cookie)
    this.#change(e.ip, -1)
  }

  /** A POST whose cookie has no GET yet; returns a function that ends its count (idempotent). */
  addPost (cookie: string, ip: string, ttlMs: number): () => void {
    const e: Unpaired = { cookie, ip, timer: setTimeout(() => { done() }, ttlMs) }
    const done = (): void => {
      const set = this.#posts.get(cookie)
      if (set === undefined || !set.delete(e)) return
      clearTimeout(e.timer)
      if (set.size === 0) this.#posts.delete(cookie)
      this.#change(ip, -1)
    }
    e.timer.unref()
    const set = this.#posts.get(cookie) ?? new Set()
    set.add(e)
    this.#posts.set(cookie, set)
    this.#change(ip, 1)
    return done
  }

  /** A GET with `cookie` arrived: its waiting POSTs are paired. */
  postsPaired (cookie: string): void {
    const set = this.#posts.get(cookie)
    if (set === undefined) return
    this.#posts.delete(cookie)
    for (const e of set) { clearTimeout(e.timer); this.#change(e.ip, -1) }
  }

  clear (): void {
    for (const e of this.#gets.values()) clearTimeout(e.timer)
    for (const set of this.#posts.values()) for (const e of set) clearTimeout(e.timer)
    this.#gets.clear()
    this.#posts.clear()
    this.#byIp.clear()
    this.onChange?.(0)
  }

  #change (ip: string, d: number): void {
    this.#byIp.add(ip, d)
    this.onChange?.(this.#byIp.total)
  }
}

/** What a router counts of its own legs, and the settings it checks them against (read per leg: reloads). */
export interface RouterCounts {
  /** null: no limits here (the next hop's own checks only). */
  limits (): LegLimitSettings | null
  /** tunnel.pairingTimeoutMs: the longest a routed leg counts as unpaired. */
  pairingMs (): number
  /** Sessions (GET, WebSocket, plain RTSP legs) open through this router, and those from `ip`. */
  sessions (ip: string): { tunnels: number, tunnelsFromIp: number }
}

/**
 * The leg limits of a router, for the whole gateway as this router sees it: a leg over one gets the
 * in-process relay's answer here (refuseLeg), and the unpaired legs it routed are counted until they
 * pair, end or their window passes (UnpairedLegs). The next hop keeps its own checks as a second line.
 * Each accept returns false when the leg was refused here; `send` routes it, false when it could not.
 */
export class RoutedLegs {
  readonly #unpaired = new UnpairedLegs()
  readonly #counts: RouterCounts
  readonly #metrics: GatewayMetrics
  readonly #log: Logger

  constructor (counts: RouterCounts, metrics: GatewayMetrics, log: Logger) {
    this.#counts = counts
    this.#metrics = metrics
    this.#log = log
  }

  /** Unpaired legs as this router counts them. */
  get unpaired (): number { return this.#unpaired.size }

  /**
   * A GET; `getOpen`: a GET of its cookie is open through this router (this one is a duplicate, which
   * the next hop drops: never unpaired). It pairs the POSTs that wait for it, or waits itself.
   */
  acceptGet (socket: net.Socket, cookie: string, ip: string, getOpen: boolean, send: () => boolean): boolean {
    const waiting = this.#unpaired.hasPosts(cookie)
    const unpaired = !waiting && !getOpen
    if (this.#refused('get', socket, ip, unpaired)) return false
    if (!send()) return true
    if (waiting) this.#unpaired.postsPaired(cookie)
    else if (unpaired) this.#unpaired.addGet(cookie, ip, this.#counts.pairingMs())
    return true
  }

  /**
   * A POST; with its cookie's GET open through this router it pairs that GET (or joins it as a
   * re-POST) and is not checked; else it counts as unpaired until `paired` (given to `send`) is
   * called, its GET comes here, or its window passes.
   */
  acceptPost (
    socket: net.Socket, cookie: string, ip: string, getOpen: boolean, send: (paired: () => void) => boolean
  ): boolean {
    if (getOpen) {
      this.#unpaired.getPaired(cookie)
      send(() => {})
      return true
    }
    if (this.#refused('post', socket, ip, true)) return false
    const paired = this.#unpaired.addPost(cookie, ip, this.#counts.pairingMs())
    if (!send(paired)) paired()
    return true
  }

  /** A WebSocket or plain RTSP leg: a session of its own, never unpaired. */
  acceptSession (kind: 'rtsp' | 'websocket', socket: net.Socket, ip: string): boolean {
    return !this.#refused(kind, socket, ip, false)
  }

  /** The GET of `cookie` ended, or paired where this router cannot see its POST. */
  getPaired (cookie: string): void { this.#unpaired.getPaired(cookie) }

  clear (): void { this.#unpaired.clear() }

  #refused (kind: LegKind, socket: net.Socket, ip: string, unpaired: boolean): boolean {
    const limits = this.#counts.limits()
    if (limits === null) return false
    const s = this.#counts.sessions(ip)
    const counts = { ...s, unpaired: this.#unpaired.size, unpairedFromIp: this.#unpaired.from(ip) }
    const r = legRefusal(limits, counts, kind, unpaired)
    if (r === null) return false
    refuseLeg(r, kind, socket, ip, this.#metrics, this.#log)
    return true
  }
}

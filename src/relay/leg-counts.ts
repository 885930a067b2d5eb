/**
 * Issue 5 leg limits where the legs are not served in this process: the portal in front of local
 * relay workers (workers.ts) and a portal splicing legs to remote relay nodes (remote-relays.ts).
 * The checks, their order and their codes are the in-process relay's (relay.ts #tooMany, and #legLimit, which calls legLimitHit):
 * limits.maxTunnels, limits.maxTunnelsPerIp, limits.maxUnpairedLegsPerIp, limits.maxUnpairedLegs.
 * Memory stays bounded: an unpaired leg is counted only once the limits let it in, and every entry
 * expires after its pairing window at the latest.
 */
import type net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { GatewayMetrics } from '../metrics.js'
import { buildHttpError } from '../tunnel/codec/http-head.js'
import { answerAndClose } from '../tunnel/answer-and-close.js'

export type LegLimitSettings = Pick<Config['limits'], 'maxTunnels' | 'maxTunnelsPerIp' | 'maxUnpairedLegs' | 'maxUnpairedLegsPerIp'>

export interface LimitHit { code: 'TG_ERR_TUN_IP_LIMIT' | 'TG_ERR_TUN_TOO_MANY', limit: string }

export const RTSP_503 = 'RTSP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\n\r\n'
export const HTTP_503 = buildHttpError(503, 'Service Unavailable', [['Retry-After', '5']])

/** Counts per client address; entries are removed at zero, so the map is as small as the live set. */
export class PerIpCounts {
  readonly #m = new Map<string, number>()
  #total = 0
  get (ip: string): number { return this.#m.get(ip) ?? 0 }
  get total (): number { return this.#total }
  add (ip: string, d: number): void {
    const had = this.#m.get(ip) ?? 0
    const n = Math.max(0, had + d)
    this.#total += n - had
    if (n === 0) this.#m.delete(ip)
    else this.#m.set(ip, n)
  }
  clear (): void { this.#m.clear(); this.#total = 0 }
  entries (): Record<string, number> { return Object.fromEntries(this.#m) }
}

/**
 * The limit a new leg from an address would break (null when it may come in), in the relay's order:
 * a leg that opens a session (GET, WebSocket, plain RTSP) against limits.maxTunnels, then
 * limits.maxTunnelsPerIp; a leg that would wait for its other half against
 * limits.maxUnpairedLegsPerIp, then limits.maxUnpairedLegs.
 */
export function legLimitHit (l: LegLimitSettings, c: { tunnels: number, tunnelsFromIp: number, unpaired: number, unpairedFromIp: number }, leg: { tunnel: boolean, unpaired: boolean }): LimitHit | null {
  if (leg.tunnel && l.maxTunnels > 0 && c.tunnels >= l.maxTunnels) return { code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxTunnels' }
  if (leg.tunnel && l.maxTunnelsPerIp > 0 && c.tunnelsFromIp >= l.maxTunnelsPerIp) return { code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxTunnelsPerIp' }
  if (leg.unpaired && l.maxUnpairedLegsPerIp > 0 && c.unpairedFromIp >= l.maxUnpairedLegsPerIp) return { code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxUnpairedLegsPerIp' }
  if (leg.unpaired && c.unpaired >= l.maxUnpairedLegs) return { code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxUnpairedLegs' }
  return null
}

/** A leg refused over a limit: its error code, the limit hit (by setting name) and a log line. */
export function countRefusal (hit: LimitHit, leg: string, ip: string, metrics: GatewayMetrics, log: Logger): void {
  metrics.errorsTotal.inc({ code: hit.code })
  metrics.limitHitsTotal.inc({ limit: hit.limit })
  log.info({ client: ip, leg, limit: hit.limit }, 'leg refused: limit reached')
}

/**
 * Refuse a leg over a limit with the in-process relay's answer: a GET or WebSocket upgrade gets
 * HTTP 503 + Retry-After, plain RTSP an RTSP 503 + Retry-After, a POST is closed; the error code,
 * the limit hit (by setting name) and a log line are counted.
 */
export function refuseLeg (hit: LimitHit, leg: 'get' | 'post' | 'rtsp' | 'websocket', socket: Pick<net.Socket, 'on' | 'end' | 'destroy'>, ip: string, metrics: GatewayMetrics, log: Logger): void {
  countRefusal(hit, leg, ip, metrics, log)
  if (leg === 'post') { socket.on('error', () => {}); socket.destroy(); return }
  answerAndClose(socket, leg === 'rtsp' ? RTSP_503 : HTTP_503)
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

/**
 * The leg limits, pure: which limit a new leg would break, given the counts of whoever checks
 * (the in-process relay, the portal in front of local workers, a portal in front of relay nodes),
 * and the refusal that follows. limits.maxTunnels, limits.maxTunnelsPerIp, limits.maxUnpairedLegsPerIp,
 * limits.maxUnpairedLegs, in that order, with one code each. No sockets, no timers.
 */
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'

export type LegLimitSettings =
  Pick<Config['limits'], 'maxTunnels' | 'maxTunnelsPerIp' | 'maxUnpairedLegs' | 'maxUnpairedLegsPerIp'>

export interface LimitHit { code: 'TG_ERR_TUN_IP_LIMIT' | 'TG_ERR_TUN_TOO_MANY', limit: string }

export type LegKind = 'get' | 'post' | 'rtsp' | 'websocket'

/** What the counts of one checker say of a new leg's address. */
export interface LegCounts { tunnels: number, tunnelsFromIp: number, unpaired: number, unpairedFromIp: number }

/**
 * A leg the gateway will not take. `status`: the answer (HTTP for tunnel legs and WebSocket upgrades,
 * RTSP for plain RTSP), null to close the leg without one. `limit`: the setting hit
 * (tunnelgate_limit_hits_total{limit}), null when none. `why` picks the log line.
 */
export interface Refusal {
  kind: 'refuse'
  /** null: a normal answer of the protocol, not an error (421 to a portal's pair question). */
  code: ErrorCode | null
  status: 403 | 421 | 503 | null
  limit: string | null
  why: 'limit' | 'closing' | 'duplicate' | 'mismatch' | 'unknown'
  /** With 'mismatch': the address of the tunnel's GET. */
  getAddress?: string
}

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

const TOO_MANY_TUNNELS: LimitHit = Object.freeze({ code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxTunnels' })
const TUNNELS_PER_IP: LimitHit = Object.freeze({ code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxTunnelsPerIp' })
const UNPAIRED_PER_IP: LimitHit = Object.freeze({ code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxUnpairedLegsPerIp' })
const TOO_MANY_UNPAIRED: LimitHit = Object.freeze({ code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxUnpairedLegs' })

/**
 * The limit a new leg from an address would break (null when it may come in), in the relay's order:
 * a leg that opens a session (GET, WebSocket, plain RTSP) against limits.maxTunnels, then
 * limits.maxTunnelsPerIp; a leg that would wait for its other half against
 * limits.maxUnpairedLegsPerIp, then limits.maxUnpairedLegs.
 */
export function legLimitHit (
  l: LegLimitSettings, c: LegCounts, leg: { tunnel: boolean, unpaired: boolean }
): LimitHit | null {
  if (leg.tunnel && l.maxTunnels > 0 && c.tunnels >= l.maxTunnels) return TOO_MANY_TUNNELS
  if (leg.tunnel && l.maxTunnelsPerIp > 0 && c.tunnelsFromIp >= l.maxTunnelsPerIp) return TUNNELS_PER_IP
  if (leg.unpaired && l.maxUnpairedLegsPerIp > 0 && c.unpairedFromIp >= l.maxUnpairedLegsPerIp) return UNPAIRED_PER_IP
  if (leg.unpaired && c.unpaired >= l.maxUnpairedLegs) return TOO_MANY_UNPAIRED
  return null
}

/** The refusal of a leg of `kind` over `hit`: 503 (+ Retry-After), or a POST closed without an answer. */
export function limitRefusal (hit: LimitHit, kind: LegKind): Refusal {
  return { kind: 'refuse', code: hit.code, status: kind === 'post' ? null : 503, limit: hit.limit, why: 'limit' }
}

/**
 * The limits a new leg of `kind` would break, as a refusal (null: it may come in). A POST opens no
 * session; `unpaired`: the leg would wait for its other half.
 */
export function legRefusal (l: LegLimitSettings, c: LegCounts, kind: LegKind, unpaired: boolean): Refusal | null {
  const hit = legLimitHit(l, c, { tunnel: kind !== 'post', unpaired })
  return hit === null ? null : limitRefusal(hit, kind)
}

/** A process that is shutting down takes no new session. */
export const CLOSING: Refusal = Object.freeze({
  kind: 'refuse', code: 'TG_ERR_TUN_TOO_MANY', status: 503, limit: null, why: 'closing'
})

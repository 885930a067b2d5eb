/**
 * Tunnel pairing as a pure state machine: where the GET and the POST(s) of one `x-sessioncookie`
 * meet. It owns the cookie registry (GET first or POST first, duplicate GETs), the pairing window
 * of each unpaired leg (POSTs that came first are held; on a relay node a POST no relay knows is an
 * orphan, held for tunnel.orphanPostMs at most), tunnel.requireSameClientIp, and the unpaired-leg
 * counts and limits per address and in total. It holds no socket and no timer: the caller passes
 * the clock (`now`, ms on one monotonic clock), carries out each decision and calls `expire` at
 * `nextDeadline()`. A held POST is the caller's opaque `P`.
 */
import type { Config } from '../config/config.js'
import { CLOSING, legRefusal, PerIpCounts, type LegLimitSettings, type Refusal } from './leg-limits.js'

/** Portal → relay POST hand-shake (relay nodes only): "attach only if the GET is here". */
export const PAIR_HEADER = 'X-Tunnelgate-Pair'
export const POST_KNOWN = 'HTTP/1.0 202 Accepted\r\nX-Tunnelgate-Pair: attached\r\n\r\n'
export const POST_UNKNOWN =
  'HTTP/1.0 421 Misdirected Request\r\nX-Tunnelgate-Pair: unknown\r\nContent-Length: 0\r\n\r\n'

export interface PairingSettings {
  limits: LegLimitSettings
  pairingTimeoutMs: number
  /** A relay node: a POST whose GET no relay has is held for at most this (null: pairingTimeoutMs). */
  orphanPostMs: number | null
  requireSameClientIp: boolean
}

export function pairingSettings (config: Config): PairingSettings {
  return {
    limits: config.limits,
    pairingTimeoutMs: config.tunnel.pairingTimeoutMs,
    orphanPostMs: config.role === 'relay' ? config.tunnel.orphanPostMs : null,
    requireSameClientIp: config.tunnel.requireSameClientIp
  }
}

/** What the checker's sessions say of a new GET (it opens one). */
export interface SessionCounts { tunnels: number, tunnelsFromIp: number, closing: boolean }

/** A held POST that the new GET takes (`refusal` null: attach it), or refuses (another address). */
export interface HeldOutcome<P> { post: P, refusal: Refusal | null }

export type GetDecision<P> =
  | Refusal
  /** Answer the GET and open its tunnel (`id` names it in getClosed and expire). */
  | { kind: 'open', id: number, posts: Array<HeldOutcome<P>> }

export type PostDecision =
  | Refusal
  /** Attach the POST to its cookie's open GET. */
  | { kind: 'attach' }
  /** Hold the POST (paused, its early body bounded) until its GET comes, or `deadline`. */
  | { kind: 'hold', deadline: number, orphan: boolean }

export interface Expired<P> {
  /** Open GETs whose window ended with no POST: close their tunnels. */
  gets: Array<{ cookie: string, id: number }>
  /** Held POSTs whose window ended: close them, counted under `code`. */
  posts: Array<{ post: P, code: 'TG_ERR_TUN_ORPHAN_POST' | 'TG_ERR_TUN_PAIRING_TIMEOUT' }>
}

const DUPLICATE: Refusal = Object.freeze({
  kind: 'refuse', code: 'TG_ERR_TUN_DUPLICATE_GET', status: null, limit: null, why: 'duplicate'
})
/** A portal's "attach only if the GET is here" for a cookie whose GET is not. */
const UNKNOWN: Refusal = Object.freeze({ kind: 'refuse', code: null, status: 421, limit: null, why: 'unknown' })
const ATTACH = Object.freeze({ kind: 'attach' as const })

interface Waiting { cookie: string, address: string, deadline: number }
interface Held<P> extends Waiting { post: P, orphan: boolean }

/** Entries kept in deadline order (a Map keeps insertion order), so the next deadline is the first. */
class DeadlineQueue<K, V extends { deadline: number }> {
  #m = new Map<K, V>()
  #last = -Infinity

  get size (): number { return this.#m.size }
  get (k: K): V | undefined { return this.#m.get(k) }
  delete (k: K): boolean { return this.#m.delete(k) }
  first (): V | undefined { return this.#m.values().next().value }
  values (): IterableIterator<V> { return this.#m.values() }

  add (k: K, v: V): void {
    this.#m.set(k, v)
    // Only a reload that shortened a window puts a deadline before an earlier one: re-sort then.
    if (v.deadline < this.#last) this.#m = new Map([...this.#m].sort((a, b) => a[1].deadline - b[1].deadline))
    else this.#last = v.deadline
  }

  /** Remove and return the entries due at `now`. */
  due (now: number): V[] {
    const out: V[] = []
    for (const [k, v] of this.#m) {
      if (v.deadline > now) break
      this.#m.delete(k)
      out.push(v)
    }
    return out
  }

  clear (): void { this.#m.clear(); this.#last = -Infinity }
}

export class Pairing<P> {
  /** Replaced on a reload: new legs use it, held ones keep their deadlines. */
  settings: PairingSettings
  /** Open GETs by cookie (paired or not). */
  readonly #gets = new Map<string, { id: number, address: string }>()
  /** Open GETs with no POST yet. */
  readonly #waitingGets = new DeadlineQueue<string, Waiting>()
  readonly #held = new DeadlineQueue<P, Held<P>>()
  readonly #heldByCookie = new Map<string, Array<Held<P>>>()
  readonly #unpairedByIp = new PerIpCounts()
  #nextId = 0

  constructor (settings: PairingSettings) { this.settings = settings }

  /** Unpaired legs (GETs with no POST yet, held POSTs). */
  get unpaired (): number { return this.#unpairedByIp.total }
  unpairedFrom (address: string): number { return this.#unpairedByIp.get(address) }
  get heldPosts (): number { return this.#held.size }
  hasGet (cookie: string): boolean { return this.#gets.has(cookie) }

  /** The earliest deadline of an unpaired leg (null: none waits). */
  nextDeadline (): number | null {
    const g = this.#waitingGets.first()?.deadline
    const p = this.#held.first()?.deadline
    if (g === undefined) return p ?? null
    return p === undefined ? g : Math.min(g, p)
  }

  /** A GET for `cookie` from `address` (a plain address). */
  offerGet (cookie: string, address: string, now: number, sessions: SessionCounts): GetDecision<P> {
    if (this.#gets.has(cookie)) return DUPLICATE
    if (sessions.closing) return CLOSING
    const held = this.#heldByCookie.get(cookie)
    const { tunnels, tunnelsFromIp } = sessions
    const counts = { tunnels, tunnelsFromIp, unpaired: this.unpaired, unpairedFromIp: this.unpairedFrom(address) }
    const refused = legRefusal(this.settings.limits, counts, 'get', held === undefined)
    if (refused !== null) return refused
    const id = ++this.#nextId
    this.#gets.set(cookie, { id, address })
    this.#waitingGets.add(cookie, { cookie, address, deadline: now + this.settings.pairingTimeoutMs })
    this.#unpairedByIp.add(address, 1)
    const posts: Array<HeldOutcome<P>> = []
    if (held !== undefined) {
      this.#heldByCookie.delete(cookie)
      for (const h of held) {
        this.#held.delete(h.post)
        this.#unpairedByIp.add(h.address, -1)
        const mismatch = this.#mismatch(address, h.address)
        if (mismatch === null) this.#getPaired(cookie)
        posts.push({ post: h.post, refusal: mismatch })
      }
    }
    return { kind: 'open', id, posts }
  }

  /**
   * A POST for `cookie` from `address`. `askOnly`: a portal asks "attach only if the GET is here"
   * (relay nodes); when it is not, the answer is 421 and nothing is held.
   */
  offerPost (cookie: string, address: string, now: number, post: P, askOnly = false): PostDecision {
    const get = this.#gets.get(cookie)
    if (get !== undefined) {
      const mismatch = this.#mismatch(get.address, address)
      if (mismatch !== null) return mismatch
      this.#getPaired(cookie)
      return ATTACH
    }
    if (askOnly) return UNKNOWN
    const counts = { tunnels: 0, tunnelsFromIp: 0, unpaired: this.unpaired, unpairedFromIp: this.unpairedFrom(address) }
    const refused = legRefusal(this.settings.limits, counts, 'post', true)
    if (refused !== null) return refused
    const { orphanPostMs, pairingTimeoutMs } = this.settings
    const orphan = orphanPostMs !== null
    const deadline = now + (orphan ? Math.min(orphanPostMs, pairingTimeoutMs) : pairingTimeoutMs)
    const h: Held<P> = { cookie, address, deadline, post, orphan }
    this.#held.add(post, h)
    const list = this.#heldByCookie.get(cookie)
    if (list === undefined) this.#heldByCookie.set(cookie, [h])
    else list.push(h)
    this.#unpairedByIp.add(address, 1)
    return { kind: 'hold', deadline, orphan }
  }

  /** A held POST closed before its GET came (false: it was not held). */
  postClosed (post: P): boolean {
    const h = this.#held.get(post)
    if (h === undefined) return false
    this.#held.delete(post)
    this.#unheld(h)
    this.#unpairedByIp.add(h.address, -1)
    return true
  }

  /** The GET `id` of `cookie` ended (its tunnel closed), paired or not. */
  getClosed (cookie: string, id: number): void {
    if (this.#gets.get(cookie)?.id !== id) return
    this.#gets.delete(cookie)
    this.#getPaired(cookie)
  }

  /** Remove and return the legs whose window has ended at `now`. */
  expire (now: number): Expired<P> {
    const gets: Expired<P>['gets'] = []
    for (const w of this.#waitingGets.due(now)) {
      this.#unpairedByIp.add(w.address, -1)
      const g = this.#gets.get(w.cookie)
      if (g !== undefined) gets.push({ cookie: w.cookie, id: g.id })
    }
    const posts: Expired<P>['posts'] = []
    for (const h of this.#held.due(now)) {
      this.#unheld(h)
      this.#unpairedByIp.add(h.address, -1)
      posts.push({ post: h.post, code: h.orphan ? 'TG_ERR_TUN_ORPHAN_POST' : 'TG_ERR_TUN_PAIRING_TIMEOUT' })
    }
    return { gets, posts }
  }

  /** Shutting down: nothing waits any more; returns the held POSTs (to close). Open GETs stay known. */
  close (): P[] {
    const posts = [...this.#held.values()].map(h => h.post)
    this.#held.clear()
    this.#heldByCookie.clear()
    this.#waitingGets.clear()
    this.#unpairedByIp.clear()
    return posts
  }

  #getPaired (cookie: string): void {
    const w = this.#waitingGets.get(cookie)
    if (w === undefined) return
    this.#waitingGets.delete(cookie)
    this.#unpairedByIp.add(w.address, -1)
  }

  #unheld (h: Held<P>): void {
    const list = this.#heldByCookie.get(h.cookie)
    if (list === undefined) return
    const i = list.indexOf(h)
    if (i !== -1) list.splice(i, 1)
    if (list.length === 0) this.#heldByCookie.delete(h.cookie)
  }

  /** tunnel.requireSameClientIp: a POST from another address than its GET is refused (403). */
  #mismatch (getAddress: string, postAddress: string): Refusal | null {
    if (!this.settings.requireSameClientIp || getAddress === postAddress) return null
    const limit = 'tunnel.requireSameClientIp'
    return { kind: 'refuse', code: 'TG_ERR_TUN_CLIENT_MISMATCH', status: 403, limit, why: 'mismatch', getAddress }
  }
}

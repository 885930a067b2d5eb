/**
 * Back-off after failed password attempts, per client address and per user name. Pure: the
 * clock is passed in, nothing here touches a socket or a timer.
 *
 * A key (an address or a user) that failed `maxFailures` times, with no quiet gap longer than
 * `windowMs` between them, is refused for `backoffMs`; each further failure after that doubles the
 * delay up to `backoffMaxMs`. A quiet `windowMs` after the last failure or block forgets the key.
 * Tables are bounded (`maxEntries`, least recently seen forgotten first).
 */

export interface BackoffPolicy {
  /** Failures before a key is refused (0 = never refused). */
  maxFailures: number
  /** Failures are counted until none came (and no block ran) for this long. */
  windowMs: number
  /** First refusal period; doubled for every further failure. */
  backoffMs: number
  /** Longest refusal period. */
  backoffMaxMs: number
  /** Keys remembered at once. */
  maxEntries: number
}

interface Entry {
  failures: number
  /** Blocks started so far (the delay doubles with each). */
  strikes: number
  lastFailureAt: number
  blockedUntil: number
}

/** Failures of one kind of key, bounded; Map order is least recently seen first. */
export class FailureTable {
  readonly #entries = new Map<string, Entry>()
  readonly #policy: BackoffPolicy

  constructor (policy: BackoffPolicy) { this.#policy = policy }

  get size (): number { return this.#entries.size }

  /** Milliseconds until `key` may try again (0 = now). */
  retryAfter (key: string, now: number): number {
    const e = this.#live(key, now)
    if (e === undefined || e.blockedUntil <= now) return 0
    this.#touch(key, e)
    return e.blockedUntil - now
  }

  /** Count a failure of `key`; returns the refusal period it starts (0 = none). */
  fail (key: string, now: number): number {
    const p = this.#policy
    if (p.maxFailures === 0) return 0
    const e = this.#live(key, now) ?? { failures: 0, strikes: 0, lastFailureAt: now, blockedUntil: 0 }
    e.failures++
    e.lastFailureAt = now
    let delay = 0
    if (e.failures >= p.maxFailures) {
      e.strikes++
      delay = Math.min(p.backoffMs * 2 ** Math.min(e.strikes - 1, 40), p.backoffMaxMs)
      e.blockedUntil = now + delay
    }
    this.#touch(key, e)
    while (this.#entries.size > p.maxEntries) this.#entries.delete(this.#entries.keys().next().value!)
    return delay
  }

  clear (key: string): void { this.#entries.delete(key) }

  /** The entry, unless a quiet window since its last failure or block has passed (then it is forgotten). */
  #live (key: string, now: number): Entry | undefined {
    const e = this.#entries.get(key)
    if (e === undefined) return undefined
    if (now - Math.max(e.lastFailureAt, e.blockedUntil) > this.#policy.windowMs) {
      this.#entries.delete(key)
      return undefined
    }
    return e
  }

  #touch (key: string, e: Entry): void {
    this.#entries.delete(key)
    this.#entries.set(key, e)
  }
}

/** The back-off key of a client address: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64). */
export function addressKey (address: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (v4 !== null) return v4[1]!
  if (!address.includes(':')) return address
  const [head = '', tail = ''] = address.split('::', 2)
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left
  return groups.slice(0, 4).map(g => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64'
}

export interface AuthBackoffPolicy extends Omit<BackoffPolicy, 'maxFailures'> {
  maxFailuresPerAddress: number
  maxFailuresPerUser: number
}

export type BackoffVerdict = { blocked: false } | { blocked: true, by: 'address' | 'user', retryAfterMs: number }

/** Addresses remembered per user as having signed in as that user. */
const TRUSTED_PER_USER = 8

/**
 * Both tables, and the addresses each configured user signed in from (exempt from that user's
 * back-off, so an attacker guessing a user's password elsewhere does not lock its owner out).
 * Configured users have a table of their own that no flood of invented names can evict.
 */
export class AuthBackoff {
  readonly #addresses: FailureTable
  readonly #knownUsers: FailureTable
  readonly #otherUsers: FailureTable
  readonly #known: ReadonlySet<string>
  readonly #trusted = new Map<string, string[]>()

  constructor (policy: AuthBackoffPolicy, knownUsers: Iterable<string>) {
    this.#known = new Set(knownUsers)
    const { maxFailuresPerAddress, maxFailuresPerUser, ...rest } = policy
    this.#addresses = new FailureTable({ ...rest, maxFailures: maxFailuresPerAddress })
    this.#knownUsers = new FailureTable({ ...rest, maxFailures: maxFailuresPerUser, maxEntries: this.#known.size + 1 })
    this.#otherUsers = new FailureTable({ ...rest, maxFailures: maxFailuresPerUser })
  }

  /** Table sizes (addresses, users), for tests and status. */
  get sizes (): { addresses: number, users: number } {
    return { addresses: this.#addresses.size, users: this.#knownUsers.size + this.#otherUsers.size }
  }

  /** Whether an attempt from `address` (as `user`, when the request names one) must be refused now. */
  check (address: string, user: string | null, now: number): BackoffVerdict {
    const a = this.#addresses.retryAfter(addressKey(address), now)
    if (a > 0) return { blocked: true, by: 'address', retryAfterMs: a }
    if (user === null || this.#isTrusted(user, addressKey(address))) return { blocked: false }
    const u = this.#users(user).retryAfter(user, now)
    return u > 0 ? { blocked: true, by: 'user', retryAfterMs: u } : { blocked: false }
  }

  /** Count a failed attempt; returns the refusal period it started for the address or the user (0 = none). */
  fail (address: string, user: string | null, now: number): number {
    const a = this.#addresses.fail(addressKey(address), now)
    const u = user === null ? 0 : this.#users(user).fail(user, now)
    return Math.max(a, u)
  }

  /**
   * A successful sign-in: the address's failures are forgotten and the address is trusted for the
   * user. The user's own count is forgotten too unless the user is under back-off right now (then
   * the success came from a trusted address while someone else keeps guessing).
   */
  succeed (address: string, user: string, now: number): void {
    const key = addressKey(address)
    this.#addresses.clear(key)
    if (this.#knownUsers.retryAfter(user, now) === 0) this.#knownUsers.clear(user)
    if (!this.#known.has(user)) return
    const list = (this.#trusted.get(user) ?? []).filter(k => k !== key)
    list.push(key)
    if (list.length > TRUSTED_PER_USER) list.shift()
    this.#trusted.set(user, list)
  }

  #users (user: string): FailureTable { return this.#known.has(user) ? this.#knownUsers : this.#otherUsers }

  #isTrusted (user: string, key: string): boolean { return this.#trusted.get(user)?.includes(key) === true }
}

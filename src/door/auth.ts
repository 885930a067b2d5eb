/**
 * HTTP Basic credentials of the gateway (passwords stored as scrypt hashes), checked off the event
 * loop: scrypt runs on libuv's threadpool (`crypto.scrypt`), never `scryptSync` on a request path.
 * Policy (back-off, the cap on verifications in flight, metrics, logs) is the gate's (gate.ts).
 *
 * Hash format: `scrypt$<N>$<salt, base64>$<key, base64>` — make one with
 * `tunnelgate hash-password` (reads the password on stdin).
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import type { Header } from '../tunnel/codec/rtsp-message.js'

export interface BasicUser { user: string, hash: string }

const KEYLEN = 32
const HASH = /^scrypt\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/

/** For `tunnelgate hash-password` only (a CLI, not a request path). */
export function hashPassword (password: string, N = 16384): string {
  const salt = randomBytes(16)
  const key = scryptSync(password, salt, KEYLEN, { N })
  return `scrypt$${N}$${salt.toString('base64')}$${key.toString('base64')}`
}

/** True when `password` matches `hash`; scrypt runs on the threadpool. */
export async function verifyPassword (password: string, hash: string): Promise<boolean> {
  const m = HASH.exec(hash)
  if (!m) return false
  const expected = Buffer.from(m[3]!, 'base64')
  const key = await new Promise<Buffer>((resolve, reject) => {
    scrypt(password, Buffer.from(m[2]!, 'base64'), expected.length, {
      N: Number(m[1]), maxmem: 256 * 1024 * 1024
    }, (err, k) => { if (err === null) { resolve(k) } else { reject(err) } })
  })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** What an Authorization header offers: nothing, something that is not Basic user:password, or a user and password. */
export type BasicOffer = { kind: 'none' } | { kind: 'malformed' } | {
  kind: 'basic'
  user: string
  password: string
  value: string
}

export function basicOffer (headers: readonly Header[]): BasicOffer {
  let value: string | undefined
  for (const [k, v] of headers) if (k.toLowerCase() === 'authorization') { value = v.trim(); break }
  if (value === undefined) return { kind: 'none' }
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value)
  if (!m) return /^Bearer\s/i.test(value) ? { kind: 'none' } : { kind: 'malformed' }
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return { kind: 'malformed' }
  return { kind: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1), value }
}

/** The hash an unknown user is checked against: same cost as a known user, never a match. */
function dummyHash (users: readonly BasicUser[]): string {
  const ns = users.map(u => HASH.exec(u.hash)?.[1] ?? '16384')
  const counts = new Map<string, number>()
  for (const n of ns) counts.set(n, (counts.get(n) ?? 0) + 1)
  const n = [...counts].sort((a, b) => b[1] - a[1] || Number(b[0]) - Number(a[0]))[0]?.[0] ?? '16384'
  return `scrypt$${n}$${randomBytes(16).toString('base64')}$${randomBytes(KEYLEN).toString('base64')}`
}

export class BasicAuth {
  readonly realm: string
  readonly #users: Map<string, string>
  readonly #dummy: string
  readonly #cacheEntries: number
  /** sha256 of Authorization values already verified → user (scrypt is slow on purpose); oldest first. */
  readonly #ok = new Map<string, string>()
  /** Verifications running now, by the sha256 of their Authorization value (identical ones share one). */
  readonly #running = new Map<string, Promise<boolean>>()
  /** scrypt runs started (known and unknown users alike). */
  verifications = 0

  constructor (users: readonly BasicUser[], realm = 'tunnelgate', cacheEntries = 1024) {
    this.realm = realm
    this.#users = new Map(users.map(u => [u.user, u.hash]))
    this.#dummy = dummyHash(users)
    this.#cacheEntries = cacheEntries
  }

  get enabled (): boolean { return this.#users.size > 0 }

  get running (): number { return this.#running.size }

  isUser (user: string): boolean { return this.#users.has(user) }

  users (): string[] { return [...this.#users.keys()] }

  /** The user when `offer` was verified before (no scrypt), else null. */
  cached (offer: { value: string }): string | null {
    const key = digest(offer.value)
    const user = this.#ok.get(key)
    if (user === undefined) return null
    this.#ok.delete(key)
    this.#ok.set(key, user)
    return user
  }

  /** True when a verification of this exact offer is already running (it will be shared). */
  isRunning (offer: { value: string }): boolean { return this.#running.has(digest(offer.value)) }

  /** Verify user and password; an unknown user costs one scrypt run too, against a dummy hash. */
  async verify (offer: { user: string, password: string, value: string }): Promise<boolean> {
    const key = digest(offer.value)
    const had = this.#running.get(key)
    if (had !== undefined) return await had
    const hash = this.#users.get(offer.user)
    this.verifications++
    const run = verifyPassword(offer.password, hash ?? this.#dummy).then(ok => ok && hash !== undefined, () => false)
    this.#running.set(key, run)
    try {
      const ok = await run
      if (ok) this.#remember(key, offer.user)
      return ok
    } finally { this.#running.delete(key) }
  }

  challenge (): Header[] { return [['WWW-Authenticate', `Basic realm="${this.realm}"`]] }

  #remember (key: string, user: string): void {
    this.#ok.delete(key)
    this.#ok.set(key, user)
    while (this.#ok.size > this.#cacheEntries) this.#ok.delete(this.#ok.keys().next().value!)
  }
}

function digest (value: string): string { return createHash('sha256').update(value).digest('base64') }

/**
 * Optional gateway authentication of the tunnel GET (HTTP Basic, passwords stored as scrypt
 * hashes). Only the GET is challenged: clients never read a POST reply, so a POST is authorised
 * by its cookie's authenticated GET (it can only ever pair with one).
 *
 * Hash format: `scrypt$<N>$<salt, base64>$<key, base64>` — make one with
 * `tunnelgate hash-password` (reads the password on stdin).
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto'
import type { Header } from '../tunnel/codec/rtsp-message.js'

export interface BasicUser { user: string, hash: string }

const KEYLEN = 32
const CACHE_MAX = 1024

export function hashPassword (password: string, N = 16384): string {
  const salt = randomBytes(16)
  const key = scryptSync(password, salt, KEYLEN, { N })
  return `scrypt$${N}$${salt.toString('base64')}$${key.toString('base64')}`
}

export function verifyPassword (password: string, hash: string): boolean {
  const m = /^scrypt\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash)
  if (!m) return false
  const expected = Buffer.from(m[3]!, 'base64')
  const key = scryptSync(password, Buffer.from(m[2]!, 'base64'), expected.length, { N: Number(m[1]), maxmem: 256 * 1024 * 1024 })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

export class BasicAuth {
  readonly realm: string
  readonly #users: Map<string, string>
  /** Authorization header values already verified (scrypt is slow on purpose). */
  readonly #ok = new Map<string, string>()

  constructor (users: readonly BasicUser[], realm = 'tunnelgate') {
    this.realm = realm
    this.#users = new Map(users.map(u => [u.user, u.hash]))
  }

  get enabled (): boolean { return this.#users.size > 0 }

  /** The authenticated user, or null. */
  check (headers: readonly Header[]): string | null {
    let value: string | undefined
    for (const [k, v] of headers) if (k.toLowerCase() === 'authorization') { value = v.trim(); break }
    if (value === undefined) return null
    const cached = this.#ok.get(value)
    if (cached !== undefined) return cached
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value)
    if (!m) return null
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) return null
    const user = decoded.slice(0, colon)
    const hash = this.#users.get(user)
    if (hash === undefined || !verifyPassword(decoded.slice(colon + 1), hash)) return null
    if (this.#ok.size >= CACHE_MAX) this.#ok.delete(this.#ok.keys().next().value!)
    this.#ok.set(value, user)
    return user
  }

  challenge (): Header[] { return [['WWW-Authenticate', `Basic realm="${this.realm}"`]] }
}

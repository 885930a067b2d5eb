/**
 * Access control on the port-80 front door (besides HTTP Basic, see auth.ts):
 *
 * - Client address allow/deny lists (CIDR, IPv4 and IPv6) checked when a connection is accepted:
 *   a denied address is closed before a byte of it is read. Deny wins over allow; an empty allow
 *   list allows every address not denied.
 * - Bearer / query tokens on the tunnel GET, bound to a stream path and with an expiry, in two
 *   formats verified with the same shared secrets (`auth.tokenSecrets`):
 *     - tunnelgate HMAC token: `tg1.<exp>.<path, base64url>.<HMAC-SHA256(secret, "tg1.<exp>.<path b64url>"),
 * base64url>`
 *       where <exp> is the expiry in Unix seconds;
 *     - JWT (RFC 7519) signed with HS256 only, claims `exp` (required, Unix seconds), `path`
 *       (required) and `nbf` (optional).
 *   A token's path allows that path and everything below it on a segment boundary (`/cam` allows
 *   `/cam`, `/cam/trackID=1`, not `/camera`); `/` allows every path.
 * - Grants (`g1.…`, the HTTP routes' grant cookie): a token's path and expiry signed over another
 *   domain with the same secrets, given to the holder of a verified token.
 * Signatures are compared in constant time.
 *
 * Pure apart from the clock (passed in for tests).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import net from 'node:net'
import type { Header } from './rtsp-message.js'

// ---------------------------------------------------------------- CIDR lists

export interface AddressFilter {
  /** True when the address may connect. */
  allows (address: string): boolean
}

/** Parse `10.0.0.0/8`, `::1/128` or a bare address; throws a RangeError naming the entry. */
export function parseCidr (entry: string): { address: string, prefix: number, family: 'ipv4' | 'ipv6' } {
  const [addr = '', bits] = entry.trim().split('/')
  const family = net.isIPv4(addr) ? 'ipv4' : net.isIPv6(addr) ? 'ipv6' : null
  if (family === null) throw new RangeError(`'${entry}' is not an IP address or CIDR block`)
  const max = family === 'ipv4' ? 32 : 128
  const prefix = bits === undefined ? max : Number(bits)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
    throw new RangeError(`'${entry}' has a bad prefix length (0-${max})`)
  }
  return { address: addr, prefix, family }
}

function blockList (entries: readonly string[]): net.BlockList {
  const list = new net.BlockList()
  for (const e of entries) {
    const c = parseCidr(e)
    list.addSubnet(c.address, c.prefix, c.family)
  }
  return list
}

/** Normalise what Node reports for a socket (`::ffff:1.2.3.4` → `1.2.3.4`). */
export function plainAddress (address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return m === null ? address : m[1]!
}

export function createAddressFilter (allow: readonly string[], deny: readonly string[]): AddressFilter {
  const allowList = allow.length > 0 ? blockList(allow) : null
  const denyList = deny.length > 0 ? blockList(deny) : null
  return {
    allows (address: string): boolean {
      const a = plainAddress(address)
      const family = net.isIPv4(a) ? 'ipv4' : net.isIPv6(a) ? 'ipv6' : null
      if (family === null) return allowList === null && denyList === null
      if (denyList !== null && denyList.check(a, family)) return false
      return allowList === null || allowList.check(a, family)
    }
  }
}

// ---------------------------------------------------------------- tokens

export type TokenResult =
  | { ok: true, path: string, exp: number }
  | { ok: false, reason: 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'bad-algorithm' }

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

function hmac (secret: string, data: string, alg: 'sha256' = 'sha256'): Buffer {
  return createHmac(alg, secret).update(data).digest()
}

function sigEqual (a: Buffer, b: Buffer): boolean { return a.length === b.length && timingSafeEqual(a, b) }

/** A tunnelgate HMAC token for `path`, valid until `expSeconds` (Unix seconds). */
export function signHmacToken (secret: string, path: string, expSeconds: number): string {
  return signPathClaim('tg1', '', secret, path, expSeconds)
}

/**
 * A grant for the holder of a verified token (the HTTP routes' grant cookie): like a tg1 token but
 * signed over another domain, so a grant is never accepted as a token nor a token as a grant.
 */
export function signGrant (secret: string, path: string, expSeconds: number): string {
  return signPathClaim('g1', GRANT_DOMAIN, secret, path, expSeconds)
}

/** Verify a grant made by signGrant with any of `secrets` at time `nowSeconds`. */
export function verifyGrant (grant: string, secrets: readonly string[], nowSeconds: number): TokenResult {
  return verifyPathClaim('g1', GRANT_DOMAIN, grant, secrets, nowSeconds)
}

const GRANT_DOMAIN = 'tunnelgate-grant\n'

/** `<prefix>.<exp>.<base64url(path)>.<base64url(HMAC(secret, domain + "<prefix>.<exp>.<base64url(path)>"))>` */
function signPathClaim (prefix: string, domain: string, secret: string, path: string, expSeconds: number): string {
  const body = `${prefix}.${Math.floor(expSeconds)}.${b64url(path)}`
  return `${body}.${b64url(hmac(secret, domain + body))}`
}

function verifyPathClaim (
  prefix: string, domain: string, token: string, secrets: readonly string[], nowSeconds: number
): TokenResult {
  const parts = token.split('.')
  if (token.length > TOKEN_MAX_CHARS || parts.length !== 4 || parts[0] !== prefix) {
    return { ok: false, reason: 'malformed' }
  }
  const [, expText = '', pathB64 = '', sig = ''] = parts
  if (!/^\d{1,12}$/.test(expText) || !B64URL.test(pathB64) || !B64URL.test(sig)) {
    return { ok: false, reason: 'malformed' }
  }
  const body = `${prefix}.${expText}.${pathB64}`
  const given = Buffer.from(sig, 'base64url')
  if (!secrets.some(s => sigEqual(hmac(s, domain + body), given))) return { ok: false, reason: 'bad-signature' }
  const path = Buffer.from(pathB64, 'base64url').toString('utf8')
  if (!path.startsWith('/')) return { ok: false, reason: 'malformed' }
  const exp = Number(expText)
  if (exp <= nowSeconds) return { ok: false, reason: 'expired' }
  return { ok: true, path, exp }
}

/** An HS256 JWT with claims { path, exp } (and any `extra` claims). */
export function signJwt (
  secret: string, claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }
): string {
  const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  return `${body}.${b64url(hmac(secret, body))}`
}

/** Longest token verifyToken looks at (longer ones are malformed). */
export const TOKEN_MAX_CHARS = 4096

export type TokenFormat = 'hmac' | 'jwt'

/**
 * A token of either format for `path` valid until `expSeconds` (Unix seconds), as verifyToken
 * accepts it: what `tunnelgate token` prints. The JWT also carries `iat` (`nowSeconds`).
 */
export function mintToken (
  format: TokenFormat, secret: string, path: string, expSeconds: number, nowSeconds: number
): string {
  const exp = Math.floor(expSeconds)
  return format === 'hmac'
    ? signHmacToken(secret, path, exp)
    : signJwt(secret, { path, exp, iat: Math.floor(nowSeconds) })
}

const B64URL = /^[A-Za-z0-9_-]*$/

/** Verify a token of either format against any of `secrets` at time `nowSeconds`. */
export function verifyToken (token: string, secrets: readonly string[], nowSeconds: number): TokenResult {
  if (token.length > TOKEN_MAX_CHARS) return { ok: false, reason: 'malformed' }
  const parts = token.split('.')
  if (parts[0] === 'tg1' && parts.length === 4) return verifyPathClaim('tg1', '', token, secrets, nowSeconds)
  if (parts.length === 3) {
    const [h = '', c = '', sig = ''] = parts
    if (!B64URL.test(h) || !B64URL.test(c) || !B64URL.test(sig)) return { ok: false, reason: 'malformed' }
    let header: unknown, claims: unknown
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'))
      claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'))
    } catch { return { ok: false, reason: 'malformed' } }
    if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null) {
      return { ok: false, reason: 'malformed' }
    }
    // Only HS256: never 'none', never an algorithm chosen by the token beyond that.
    if ((header as { alg?: unknown }).alg !== 'HS256') return { ok: false, reason: 'bad-algorithm' }
    const given = Buffer.from(sig, 'base64url')
    if (!secrets.some(s => sigEqual(hmac(s, `${h}.${c}`), given))) return { ok: false, reason: 'bad-signature' }
    const { exp, nbf, path } = claims as { exp?: unknown, nbf?: unknown, path?: unknown }
    if (typeof exp !== 'number' || typeof path !== 'string' || !path.startsWith('/')) {
      return { ok: false, reason: 'malformed' }
    }
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSeconds)) {
      return { ok: false, reason: 'not-yet-valid' }
    }
    if (exp <= nowSeconds) return { ok: false, reason: 'expired' }
    return { ok: true, path, exp }
  }
  return { ok: false, reason: 'malformed' }
}

/** True when a token bound to `allowed` covers `path` (segment boundary; '/' covers all). */
export function pathAllowed (allowed: string, path: string): boolean {
  if (allowed === '/' || allowed === '') return path.startsWith('/')
  const p = allowed.endsWith('/') ? allowed.slice(0, -1) : allowed
  return path === p || path.startsWith(p + '/')
}

/** The token a tunnel GET carries: `Authorization: Bearer …` or the query parameter `param`. */
export function tokenOf (target: string, headers: readonly Header[], param: string): string | null {
  for (const [k, v] of headers) {
    if (k.toLowerCase() !== 'authorization') continue
    const m = /^Bearer\s+(\S+)\s*$/i.exec(v.trim())
    if (m !== null) return m[1]!
  }
  const q = target.indexOf('?')
  if (q === -1) return null
  for (const kv of target.slice(q + 1).split('&')) {
    const eq = kv.indexOf('=')
    if (eq === -1 || kv.slice(0, eq) !== param) continue
    try { return decodeURIComponent(kv.slice(eq + 1)) } catch { return null }
  }
  return null
}

/** Path part of a GET target (origin-form or absolute-form), without query. */
export function targetPath (target: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(\/[^?#]*)?/i.exec(target)
  const p = m !== null ? (m[1] ?? '/') : target.split(/[?#]/)[0]!
  return p === '' ? '/' : p
}

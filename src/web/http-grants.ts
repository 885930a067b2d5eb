/**
 * Token grants on HTTP routes: a request with a valid path-bound token earns a grant cookie for the
 * token's path (`g1.<exp>.<path>.<HMAC>`, signed with `auth.tokenSecrets[0]` over its own domain,
 * src/tunnel/codec/access.ts), and a request carrying a valid grant for its path needs no token.
 * HLS segments are relative URLs without the token; players (hls.js, ffmpeg, GStreamer) send the
 * playlist's cookies with them. The grant is stateless: any portal with the same secrets accepts it.
 */
import { pathAllowed, signGrant, verifyGrant } from '../tunnel/codec/access.js'
import { cookieValues } from './http-cookies.js'

/** Grant cookies of one request looked at (a client may hold one per path); the rest are ignored. */
export const MAX_GRANT_COOKIES = 8

/** True when one of the request's grant cookies named `name` is valid and covers `path`. */
export function grantCovers (
  cookieHeader: string | undefined, name: string, secrets: readonly string[], path: string, nowMs: number
): boolean {
  for (const value of cookieValues(cookieHeader, name, MAX_GRANT_COOKIES)) {
    const g = verifyGrant(value, secrets, nowMs / 1000)
    if (g.ok && pathAllowed(g.path, path)) return true
  }
  return false
}

export interface GrantCookieOptions {
  /** The cookie's name (`httpProxy.grantCookie`). */
  name: string
  /** The secret it is signed with (`auth.tokenSecrets[0]`). */
  secret: string
  /** The path and expiry of the token it stands for. */
  tokenPath: string
  tokenExpMs: number
  nowMs: number
  /** The request came over TLS: the cookie is `Secure`. */
  secure: boolean
}

/**
 * The Set-Cookie value of a grant: `Path` = the token's path (each segment percent-encoded),
 * `Max-Age` = the token's remaining life (at least 1 s), `HttpOnly`, `SameSite=Strict`.
 */
export function grantCookie (o: GrantCookieOptions): string {
  const cookiePath = o.tokenPath === '/'
    ? '/'
    : o.tokenPath.replace(/\/+$/, '').split('/').map(encodeURIComponent).join('/')
  const maxAge = Math.max(1, Math.floor((o.tokenExpMs - o.nowMs) / 1000))
  const value = signGrant(o.secret, o.tokenPath, o.tokenExpMs / 1000)
  const secure = o.secure ? '; Secure' : ''
  return `${o.name}=${value}; Path=${cookiePath}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure}`
}

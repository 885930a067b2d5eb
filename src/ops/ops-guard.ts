/**
 * Who may use the ops listener (pure). With `ops.token` set, every request carries it, as
 * `Authorization: Bearer <token>` (Prometheus, curl) or as the password of HTTP Basic (a browser
 * on the status page, whose EventSource cannot set a header), compared in constant time. Without a
 * token the listener is on loopback (src/config/checks.ts refuses any other host), and a request
 * must name it by a loopback Host and come from no foreign page (Origin): a web page the operator
 * opens cannot drive it, nor read it through a DNS name rebound to 127.0.0.1.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isLoopbackHost } from '../config/config.js'

export type OpsVerdict = { ok: true } | { ok: false, status: 401 | 403, message: string }

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** The credential a request offers: a Bearer token or the password of Basic credentials. */
function offered (authorization: string | undefined): string | null {
  if (authorization === undefined) return null
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
  if (bearer !== null) return bearer[1]!
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization)
  if (basic === null) return null
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? null : decoded.slice(colon + 1)
}

/** The host part of a Host header or an Origin's authority ('[::1]:9180' → '::1'). */
function hostOf (authority: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(authority)
  if (v6 !== null) return v6[1]!
  const colon = authority.lastIndexOf(':')
  return colon === -1 ? authority : authority.slice(0, colon)
}

export function checkOpsRequest (
  token: string, headers: { authorization?: string | undefined, host?: string | undefined, origin?: string | undefined }
): OpsVerdict {
  if (token !== '') {
    const got = offered(headers.authorization)
    if (got === null) {
      return {
        ok: false,
        status: 401,
        message: 'an Authorization header with the ops token (Bearer, or the password of Basic) is required'
      }
    }
    return timingSafeEqual(digest(got), digest(token))
      ? { ok: true }
      : { ok: false, status: 401, message: 'wrong ops token' }
  }
  if (headers.host !== undefined && !isLoopbackHost(hostOf(headers.host))) {
    return {
      ok: false,
      status: 403,
      message: `Host '${headers.host.slice(0, 100)}' does not name this loopback listener (set ops.token to reach it ` +
        'by another name)'
    }
  }
  if (headers.origin !== undefined) {
    let host = ''
    try { host = new URL(headers.origin).hostname.replace(/^\[|\]$/g, '') } catch {}
    if (!isLoopbackHost(host)) {
      return {
        ok: false, status: 403, message: 'requests from another site\'s page are refused (set ops.token to allow them)'
      }
    }
  }
  return { ok: true }
}

/**
 * The one parser of RTSP URLs (RFC 2326 §3.2 on RFC 3986 §3), used by the session, the URL mapper,
 * the routes and the config alike, and the one canonical form of a stream path.
 *
 *   rtsp-URL  = scheme "://" authority path-abempty [ "?" query ] [ "#" fragment ]
 *   scheme    = "rtsp" / "rtsps" / "rtspu" / "rtspt" / "rtsph"      ; case-insensitive
 *   authority = [ userinfo "@" ] host [ ":" port ]
 *   host      = "[" IPv6address [ "%25" zone ] "]" / IPv4address / reg-name
 *   port      = *DIGIT                                             ; 0-65535; empty = the default
 *
 * Every input yields a parse or a reason; nothing here throws.
 */

export type RtspScheme = 'rtsp' | 'rtsps' | 'rtspu' | 'rtspt' | 'rtsph'

export interface RtspUrl {
  scheme: RtspScheme
  /** The userinfo before '@' (credentials), '' when none. */
  userinfo: string
  /** Lower-cased; an IPv6 address without its brackets. */
  host: string
  /** The port written, or the scheme's default (554; rtsps 322). */
  port: number
  /** True when the URL wrote its port. */
  portGiven: boolean
  /** `host[:port]` as written in the URL (IPv6 in brackets), without userinfo. */
  authority: string
  /** As written ('' when the URL has none). */
  path: string
  /** From '?' to before '#' (with the '?'), '' when none. */
  query: string
  /** From '#' (with it), '' when none. */
  fragment: string
}

export type UrlResult = { ok: true, url: RtspUrl } | { ok: false, reason: string }

/** Longest URL parsed; longer ones are refused. */
export const MAX_URL_LENGTH = 8192

const SCHEMES = new Set<string>(['rtsp', 'rtsps', 'rtspu', 'rtspt', 'rtsph'])
/** unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2 reg-name), and ':' for userinfo. */
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/
const USERINFO = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/
/** Bytes a path, query or fragment may hold here: visible ASCII and obs-text, no space or control. */
const OPAQUE = /^[\x21-\x7e\x80-\xff]*$/

export function defaultPort (scheme: RtspScheme): number { return scheme === 'rtsps' ? 322 : 554 }

export function parseRtspUrl (text: string): UrlResult {
  if (text.length > MAX_URL_LENGTH) return bad(`URL longer than ${MAX_URL_LENGTH} characters`)
  const sep = text.indexOf('://')
  if (sep <= 0) return bad('not an absolute rtsp:// URL')
  const scheme = text.slice(0, sep).toLowerCase()
  if (!SCHEMES.has(scheme)) return bad(`scheme '${text.slice(0, Math.min(sep, 16))}' is not an RTSP scheme`)
  const rest = text.slice(sep + 3)
  let authEnd = rest.length
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]
    if (c === '/' || c === '?' || c === '#') { authEnd = i; break }
  }
  const rawAuthority = rest.slice(0, authEnd)
  const at = rawAuthority.lastIndexOf('@')
  const userinfo = at === -1 ? '' : rawAuthority.slice(0, at)
  if (!USERINFO.test(userinfo)) return bad('bad userinfo in the URL')
  const hostPort = at === -1 ? rawAuthority : rawAuthority.slice(at + 1)
  const hp = splitHostPort(hostPort)
  if (!hp.ok) return hp
  const tail = rest.slice(authEnd)
  const hash = tail.indexOf('#')
  const beforeHash = hash === -1 ? tail : tail.slice(0, hash)
  const q = beforeHash.indexOf('?')
  const path = q === -1 ? beforeHash : beforeHash.slice(0, q)
  const query = q === -1 ? '' : beforeHash.slice(q)
  const fragment = hash === -1 ? '' : tail.slice(hash)
  if (!OPAQUE.test(tail)) return bad('space or control byte in the URL')
  const s = scheme as RtspScheme
  const port = hp.port ?? defaultPort(s)
  return {
    ok: true,
    url: {
      scheme: s, userinfo, host: hp.host, port, portGiven: hp.port !== null, authority: hostPort, path, query, fragment
    }
  }
}

/** `host[:port]` for a URL (IPv6 hosts in brackets). */
export function formatAuthority (host: string, port: number | null): string {
  const h = host.includes(':') ? `[${host}]` : host
  return port === null ? h : `${h}:${port}`
}

/** Parse `host[:port]` (the authority without userinfo). */
export function splitHostPort (text: string): {
  ok: true
  host: string
  port: number | null
} | { ok: false, reason: string } {
  let host: string
  let after: string
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close === -1) return bad('unclosed IPv6 bracket in the URL')
    host = text.slice(1, close).toLowerCase()
    if (!isIpv6Literal(host)) return bad('bad IPv6 address in the URL')
    after = text.slice(close + 1)
  } else {
    const colon = text.indexOf(':')
    host = (colon === -1 ? text : text.slice(0, colon)).toLowerCase()
    after = colon === -1 ? '' : text.slice(colon)
    if (host === '') return bad('no host in the URL')
    if (!REG_NAME.test(host)) return bad('bad host in the URL')
  }
  if (after === '' || after === ':') return { ok: true, host, port: null }
  if (after[0] !== ':') return bad('bad authority in the URL')
  const digits = after.slice(1)
  if (!/^\d{1,5}$/.test(digits) || Number(digits) > 65535) return bad('bad port in the URL')
  return { ok: true, host, port: Number(digits) }
}

/** An IPv6 address (RFC 4291 text forms, an embedded IPv4 tail, an optional `%25zone`). */
export function isIpv6Literal (s: string): boolean {
  const zone = s.indexOf('%')
  const addr = zone === -1 ? s : s.slice(0, zone)
  if (zone !== -1 && !/^%25(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})+$/.test(s.slice(zone))) return false
  let groups = addr.split(':')
  const last = groups[groups.length - 1]!
  let words = 0
  if (last.includes('.')) {
    if (!isIpv4(last)) return false
    groups = groups.slice(0, -1)
    words = 2
    if (groups.length > 0 && groups[groups.length - 1] === '') groups.push('') // '::1.2.3.4'
  }
  const text = groups.join(':')
  const doubled = text.indexOf('::')
  if (doubled !== -1 && text.indexOf('::', doubled + 1) !== -1) return false
  const parts = doubled === -1
    ? text.split(':')
    : [...text.slice(0, doubled).split(':'), ...text.slice(doubled + 2).split(':')].filter(p => p !== '')
  for (const p of parts) if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false
  words += parts.length
  return doubled === -1 ? words === 8 : words <= 7
}

function isIpv4 (s: string): boolean {
  const parts = s.split('.')
  return parts.length === 4 && parts.every(p => /^\d{1,3}$/.test(p) && Number(p) <= 255)
}

function bad (reason: string): { ok: false, reason: string } { return { ok: false, reason } }

// ------------------------------------------------------------------------------------------
// Canonical stream paths

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * The canonical form of a URL path (RFC 3986 §6.2.2): percent-encoded unreserved bytes decoded,
 * other percent-encodings upper-cased, empty segments (`//`) and `.` removed; a trailing slash is
 * kept. Null for a `..` segment (plain or encoded: no stream path needs one, and it could climb out
 * of a route prefix) or a broken escape. `/live//demo`, `/live/./demo` and `/live/%64emo` are all
 * `/live/demo`.
 */
export function canonicalPath (path: string): string | null {
  if (path === '' || path === '/') return '/'
  if (!path.startsWith('/')) return null
  const decoded = decodeUnreserved(path)
  if (decoded === null) return null
  const segments = decoded.split('/')
  const out: string[] = []
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!
    if (seg === '' || seg === '.') continue
    if (seg === '..') return null
    out.push(seg)
  }
  const last = segments[segments.length - 1]
  const trailing = out.length > 0 && (last === '' || last === '.')
  return '/' + out.join('/') + (trailing ? '/' : '')
}

function decodeUnreserved (path: string): string | null {
  if (!path.includes('%')) return path
  let out = ''
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!
    if (c !== '%') { out += c; continue }
    const hex = path.slice(i + 1, i + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null
    const ch = String.fromCharCode(parseInt(hex, 16))
    out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`
    i += 2
  }
  return out
}

/** `query` ('?a=1&b=2' or '') without the parameters named in `names` (case-insensitive). */
export function withoutQueryParams (query: string, names: readonly string[]): string {
  if (query === '' || names.length === 0) return query
  const drop = new Set(names.map(n => n.toLowerCase()))
  const kept = query.slice(1).split('&').filter(pair => {
    const eq = pair.indexOf('=')
    return !drop.has((eq === -1 ? pair : pair.slice(0, eq)).toLowerCase())
  })
  return kept.length === 0 || (kept.length === 1 && kept[0] === '') ? '' : `?${kept.join('&')}`
}

export type CanonicalUri = { ok: true, uri: string } | { ok: false, reason: string }

/**
 * A request URI in canonical form: `scheme://authority` (no userinfo, host lower-cased) +
 * canonicalPath + the query without the parameters in `dropParams` (secrets meant for the gateway);
 * an origin-form `/path` stays origin-form. The fragment is dropped (RFC 3986 §3.5: never sent).
 */
export function canonicalUri (uri: string, dropParams: readonly string[]): CanonicalUri {
  if (uri.startsWith('/')) {
    const hash = uri.indexOf('#')
    const noFrag = hash === -1 ? uri : uri.slice(0, hash)
    const q = noFrag.indexOf('?')
    const path = canonicalPath(q === -1 ? noFrag : noFrag.slice(0, q))
    if (path === null) return bad("a '..' segment or a broken % escape in the path")
    return { ok: true, uri: path + withoutQueryParams(q === -1 ? '' : noFrag.slice(q), dropParams) }
  }
  const r = parseRtspUrl(uri)
  if (!r.ok) return r
  const path = r.url.path === '' ? '' : canonicalPath(r.url.path)
  if (path === null) return bad("a '..' segment or a broken % escape in the path")
  return { ok: true, uri: `${r.url.scheme}://${r.url.authority}${path}${withoutQueryParams(r.url.query, dropParams)}` }
}

/** `scheme://authority` of an absolute URL (null for `*`, origin-form or an unparseable URL). */
export function urlBase (uri: string): string | null {
  const r = parseRtspUrl(uri)
  return r.ok ? `${r.url.scheme}://${r.url.authority}` : null
}

/** Starts with `scheme://` (any scheme, RFC 3986 §3.1): an absolute URL, not a relative control or path. */
export function isAbsoluteUrl (text: string): boolean { return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text) }

/**
 * Request-path normalisation for the HTTP pass-through routes (pure): the canonical form routes are
 * matched with, the escaping of segments sent upstream, and longest-prefix matching.
 */
export type NormalisedPath =
  | {
    ok: true
    path: string
    segments: string[]
    trailingSlash: boolean
    query: string
  }
  | { ok: false, reason: string }

/** Characters that may stand unescaped in a path segment we send upstream (RFC 3986 pchar minus '%'). */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/

/**
 * Normalise an origin-form request target (`/a/b?q`). Refused: anything not starting with '/'
 * (absolute-form, authority-form, '*'), encoded '/', '\' or NUL (`%2f`, `%5c`, `%00`), a raw '\',
 * control characters, a fragment, bad percent-escapes, and '..' that climbs above the root.
 * Percent-escapes are decoded, '.' segments and empty segments ('//') dropped, '..' resolved.
 */
export function normalisePath (target: string): NormalisedPath {
  if (!target.startsWith('/')) {
    return { ok: false, reason: 'request target is not origin-form (absolute URLs are refused)' }
  }
  const q = target.indexOf('?')
  const rawPath = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q)
  if (/[\x00-\x20\x7f\\#]/.test(rawPath)) {
    return { ok: false, reason: 'control character, space, backslash or fragment in the path' }
  }
  if (/[\x00-\x20\x7f#]/.test(query)) return { ok: false, reason: 'control character, space or fragment in the query' }
  const out: string[] = []
  const raw = rawPath.split('/')
  let trailingSlash = false
  for (let i = 1; i < raw.length; i++) {
    const s = raw[i]!
    if (/%(2f|5c|00)/i.test(s)) return { ok: false, reason: 'encoded slash, backslash or NUL in the path' }
    let d: string
    try { d = decodeURIComponent(s) } catch { return { ok: false, reason: 'bad percent-escape in the path' } }
    if (/[\x00-\x1f\x7f\\/]/.test(d)) return { ok: false, reason: 'encoded control character in the path' }
    const last = i === raw.length - 1
    if (d === '' || d === '.') { if (last) trailingSlash = true; continue }
    if (d === '..') {
      if (out.length === 0) return { ok: false, reason: "'..' above the root" }
      out.pop()
      if (last) trailingSlash = true
      continue
    }
    out.push(d)
  }
  const path = '/' + out.join('/') + (trailingSlash && out.length > 0 ? '/' : '')
  return { ok: true, path, segments: out, trailingSlash, query }
}

/** Percent-encode one decoded path segment for the upstream request (UTF-8, pchar kept). */
export function encodeSegment (s: string): string {
  let o = ''
  for (const ch of s) {
    if (PCHAR.test(ch)) { o += ch; continue }
    for (const b of Buffer.from(ch, 'utf8')) o += '%' + b.toString(16).toUpperCase().padStart(2, '0')
  }
  return o
}

/** The route whose prefix covers `segments` (longest prefix wins), or null. */
export function matchRoute<R extends { path: string }> (
  routes: readonly R[], segments: readonly string[]
): { route: R, rest: string[] } | null {
  let best: { route: R, rest: string[] } | null = null
  let bestLen = -1
  for (const r of routes) {
    const rs = r.path.split('/').slice(1)
    if (rs.length > segments.length || rs.length <= bestLen) continue
    if (rs.every((s, i) => s === segments[i])) {
      best = { route: r, rest: segments.slice(rs.length) }
      bestLen = rs.length
    }
  }
  return best
}

/**
 * Secrets out of every log line and status view: tokens (query or `Authorization`), session
 * cookies (`?sessioncookie=`, `x-sessioncookie`), Basic credentials and passwords in URLs. A URL or
 * request target keeps its scheme, host and path; its query and fragment go (any parameter may carry
 * a token: `auth.tokenQueryParam` is configurable, Axis puts the cookie there), and so does the
 * password of its user info.
 *
 * Pure. The process loggers run every line through `redactLogFields` (src/core/logger.ts), and the
 * places that build a path or URL for display call `redactUrl` themselves.
 */

export const REDACTED = '[redacted]'

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@/i

/** A URL or request target with its query, fragment and password removed. */
export function redactUrl (url: string): string {
  let s = url
  const cut = s.search(/[?#]/)
  if (cut !== -1) s = s.slice(0, cut)
  const m = USERINFO.exec(s)
  if (m !== null) {
    const colon = m[2]!.indexOf(':')
    s = m[1]! + (colon === -1 ? m[2]! : `${m[2]!.slice(0, colon)}:${REDACTED}`) + '@' + s.slice(m[0].length)
  }
  return s
}

/** Header names whose values are secrets (compared in lower case). */
const SECRET_HEADERS = new Set(
  ['authorization', 'proxy-authorization', 'x-sessioncookie', 'cookie', 'set-cookie', 'x-tunnelgate-forward']
)

/** A header value as a log line may show it: the scheme of a credential, nothing of the secret. */
export function redactHeader (name: string, value: string): string {
  if (!SECRET_HEADERS.has(name.toLowerCase())) return value
  const scheme = /^(Basic|Bearer|Digest)\s/i.exec(value.trim())
  return scheme === null ? REDACTED : `${scheme[1]!} ${REDACTED}`
}

/** URLs and request targets inside free text (`'rtsp://u:p@h/x?token=…' is outside …`). */
const URL_IN_TEXT = /(?:[a-z][a-z0-9+.-]*:\/\/|(?<![\w/.-])\/)[^\s'"<>]*/gi
/** Credentials and cookies written out in free text. */
const SECRET_IN_TEXT = /\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+|\b(x-sessioncookie|authorization|sessioncookie|token)([:=]\s*)(?:(Basic|Bearer)\s+)?[^\s&;,'"]+/gi

/** Free text (an error reason, a message) with every URL through redactUrl and written-out credentials removed. */
export function redactText (text: string): string {
  return text
    .replace(URL_IN_TEXT, u => redactUrl(u))
    .replace(SECRET_IN_TEXT, (
      _m, scheme: string | undefined, key: string | undefined, sep: string | undefined, keyScheme: string | undefined
    ) =>
      scheme !== undefined
        ? `${scheme} ${REDACTED}`
        : `${key!}${sep!}${keyScheme === undefined ? '' : `${keyScheme} `}${REDACTED}`)
}

/**
 * A log line's fields with every string value through redactText, down two levels of plain objects
 * and arrays (`err`, `headers`); secret header names through redactHeader. Anything else passes unchanged.
 */
export function redactLogFields (fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null
  for (const [k, v] of Object.entries(fields)) {
    const r = redactValue(k, v, 0)
    if (r !== v) (out ??= { ...fields })[k] = r
  }
  return out ?? fields
}

function redactValue (key: string, v: unknown, depth: number): unknown {
  if (typeof v === 'string') return SECRET_HEADERS.has(key.toLowerCase()) ? redactHeader(key, v) : redactText(v)
  if (depth > 1 || v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) {
    const mapped = v.map(x => redactValue(key, x, depth + 1))
    return mapped.some((x, i) => x !== v[i]) ? mapped : v
  }
  if (v instanceof Error) {
    const message = redactText(v.message)
    return message === v.message
      ? v
      : { type: v.name, message, ...(v.stack === undefined ? {} : { stack: redactText(v.stack) }) }
  }
  // Class instances (a request, a socket) are left to their serializers.
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto !== Object.prototype && proto !== null) return v
  let out: Record<string, unknown> | null = null
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const r = redactValue(k, x, depth + 1)
    if (r !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = r
  }
  return out ?? v
}

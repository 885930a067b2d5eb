/**
 * Requests a backend could read another way than the gateway did (request smuggling between
 * parsers). Backends do not all parse by line: live555 looks for `Transport:`, `CSeq:`,
 * `Session:`, `Content-Length:`, `Range:`, `Authorization:` and others anywhere in the request
 * text, so such a name hidden in the request target, in another header's name or in a value is
 * read as that header; and parsers differ on which copy of a repeated header counts.
 *
 * A request is refused (never forwarded) when the text of a known RTSP header name followed by
 * ':' appears anywhere but at the start of its own field line, or when a header that may appear
 * once appears twice. Pure.
 */
import type { Header } from './rtsp-message.js'

/**
 * Names that backends look up by substring (live555's RTSPServer and RTSPCommon), and the headers
 * the gateway itself reads or rewrites.
 */
const GUARDED = [
  'accept', 'authorization', 'bandwidth', 'blocksize', 'content-base', 'content-length', 'content-type',
  'cseq', 'range', 'require', 'scale', 'session', 'speed', 'transport', 'x-playnow', 'x-sessioncookie'
].map(n => `${n}:`)

/** Headers a request carries at most once. */
const SINGLETONS = new Set(
  [
    'cseq', 'session', 'transport', 'content-length', 'content-type', 'range', 'scale', 'speed', 'authorization',
    'blocksize', 'bandwidth'
  ]
)

/** `scheme://authority` of absolute URLs: host names and ports are not searched (`rtsp://cdn-transport:554`). */
const URL_AUTHORITY = /[a-z][a-z0-9+.-]*:\/\/[^/\s"',;?#]*/g

/**
 * Why a request could be read two ways, or null when it cannot. `target` is the request URI, whose
 * authority is the gateway's to replace; its path and query are searched.
 */
export function ambiguity (method: string, target: string, headers: readonly Header[]): string | null {
  const hidden = hiddenName(`${method} ${target}`.toLowerCase(), -1)
  if (hidden !== null) return `header name '${hidden}' inside the request line`
  const seen = new Set<string>()
  for (const [name, value] of headers) {
    const lower = name.toLowerCase()
    if (SINGLETONS.has(lower)) {
      if (seen.has(lower)) return `header '${name}' given twice`
      seen.add(lower)
    }
    const found = hiddenName(`${lower}: ${value.toLowerCase()}`, 0)
    if (found !== null) return `header name '${found}' inside the field line of '${name.slice(0, 64)}'`
  }
  return null
}

/** A guarded `name:` found in `text` (URL authorities aside) at an index other than `allowedAt`, or null. */
function hiddenName (text: string, allowedAt: number): string | null {
  if (!text.includes(':')) return null
  const searched = text.includes('://') ? text.replace(URL_AUTHORITY, m => ' '.repeat(m.length)) : text
  for (const n of GUARDED) {
    for (let i = searched.indexOf(n); i !== -1; i = searched.indexOf(n, i + 1)) {
      if (i !== allowedAt) return n.slice(0, -1)
    }
  }
  return null
}

/**
 * HTTP request heads for the tunnel legs, parsed by hand on raw sockets (never node:http: it
 * would enforce the POST's fake Content-Length and time the endless POST out, see the
 * reference §3.8).
 *
 *   request-head = *( CRLF / LF ) request-line *( header-field EOL ) EOL      ; RFC 9112 §2.2, §3
 *   request-line = method SP request-target SP HTTP-version EOL
 *   header-field = field-name ":" OWS field-value OWS                        ; obs-fold accepted
 *   EOL          = CRLF / LF                                                 ; bare LF tolerated
 *
 * Tunnel legs (Apple, "Tunneling QuickTime RTSP and RTP over HTTP"):
 *
 *   GET  … with  x-sessioncookie: <token>  or  Accept: application/x-rtsp-tunnelled
 *   POST … with  x-sessioncookie: <token>  or  Content-Type: application/x-rtsp-tunnelled
 *   Axis "AP" variant: the cookie rides in the target as  ?sessioncookie=<token>
 */
import type { ErrorCode } from '../../core/errors.js'
import type { Header } from './rtsp-message.js'
import {
  isToken, parseFieldLines, parseRequestLine, printable, splitLines, type Grammar, type RequestLine
} from './head-grammar.js'

export interface HttpHeadLimits {
  /** Longest head (leading blank lines, request line, headers, final blank line), in bytes. */
  maxHeadBytes: number
  /** Most header fields in one head. */
  maxHeaders: number
}

export const DEFAULT_HTTP_HEAD_LIMITS: Readonly<HttpHeadLimits> = Object.freeze({
  maxHeadBytes: 8192,
  maxHeaders: 64
})

export interface HttpHead {
  method: string
  target: string
  version: string
  headers: Header[]
  /** Bytes of the buffer taken by the head; the body (POST base64) starts here. */
  headLength: number
}

export type HttpHeadResult =
  | { state: 'incomplete' }
  | { state: 'error', code: ErrorCode, reason: string }
  | { state: 'ok', head: HttpHead }

const CR = 0x0d
const LF = 0x0a
const HTTP_VERSION = /^HTTP\/\d\.\d$/

/**
 * Parse an HTTP request head from the start of `buf` (the caller accumulates bytes and calls
 * again on 'incomplete'). The grammar is head-grammar.ts's; a complete but malformed request
 * line is reported as soon as its LF arrives, so a non-HTTP client is refused without waiting
 * for the size limit.
 */
export function parseHttpHead (buf: Buffer, limits: Partial<HttpHeadLimits> = {}): HttpHeadResult {
  const { maxHeadBytes, maxHeaders } = { ...DEFAULT_HTTP_HEAD_LIMITS, ...limits }
  let start = 0
  // RFC 9112 §2.2: empty lines (CRLF) before the request line are ignored.
  while (start + 1 < buf.length && buf[start] === CR && buf[start + 1] === LF) start += 2
  while (start < buf.length && buf[start] === LF) start++
  const scanEnd = Math.min(buf.length, maxHeadBytes)
  let firstLf = -1
  let end = -1 // index after the blank line
  let lineEnd = -1 // index of the LF ending the last header line
  for (let i = start; i < scanEnd; i++) {
    if (buf[i] !== LF) continue
    if (firstLf === -1) firstLf = i
    if (buf[i + 1] === LF) { lineEnd = i; end = i + 2; break }
    if (buf[i + 1] === CR && buf[i + 2] === LF) { lineEnd = i; end = i + 3; break }
  }
  if (end > maxHeadBytes) end = -1
  if (end === -1) {
    if (firstLf !== -1) {
      const first = requestLine(buf.toString('latin1', start, firstLf))
      if (!first.ok) return malformed(first.reason)
    } else if (buf.length > start) {
      // No LF yet: refuse obvious non-HTTP early (a control byte, or a method that is no token).
      const text = buf.toString('latin1', start, Math.min(buf.length, start + 64))
      const body = text.endsWith('\r') ? text.slice(0, -1) : text
      const sp = body.indexOf(' ')
      const method = sp === -1 ? body : body.slice(0, sp)

      if ((method.length > 0 && !isToken(method)) || /[\x00-\x1f\x7f]/.test(body)) {
        return malformed(`not an HTTP request line: '${printable(text)}'`)
      }
    }
    if (buf.length >= maxHeadBytes) {
      return {
        state: 'error', code: 'TG_ERR_HTTP_HEAD_TOO_LARGE', reason: `request head longer than ${maxHeadBytes} bytes`
      }
    }
    return { state: 'incomplete' }
  }
  const lines = splitLines(buf.toString('latin1', start, lineEnd))
  if (!lines.ok) return malformed(lines.reason)
  const first = requestLine(lines.value[0]!)
  if (!first.ok) return malformed(first.reason)
  const fields = parseFieldLines(lines.value, 1, maxHeaders)
  if (!fields.ok) {
    return fields.tooMany
      ? { state: 'error', code: 'TG_ERR_HTTP_HEAD_TOO_LARGE', reason: fields.reason }
      : malformed(fields.reason)
  }
  const { method, target, version } = first.value
  return { state: 'ok', head: { method, target, version, headers: fields.value, headLength: end } }
}

/** The request line as written up to its LF (one CR before the LF belongs to the line end). */
function requestLine (line: string): Grammar<RequestLine> {
  return parseRequestLine(line.endsWith('\r') ? line.slice(0, -1) : line, HTTP_VERSION)
}

function malformed (reason: string): { state: 'error', code: ErrorCode, reason: string } {
  return { state: 'error', code: 'TG_ERR_HTTP_HEAD_MALFORMED', reason }
}

// ------------------------------------------------------------------------------------------
// Tunnel leg classification

export const TUNNEL_CONTENT_TYPE = 'application/x-rtsp-tunnelled'
export const COOKIE_HEADER = 'x-sessioncookie'
/** Query parameter carrying the cookie in Axis's Flash ("AP") variant. */
export const COOKIE_QUERY_PARAM = 'sessioncookie'

export interface CookieLimits {
  /** Shortest accepted cookie, after trimming. */
  minCookie: number
  /** Longest accepted cookie, after trimming (DSS: < 32; gortsplib sends 32, Axis a GUID). */
  maxCookie: number
}

export const DEFAULT_COOKIE_LIMITS: Readonly<CookieLimits> = Object.freeze({ minCookie: 1, maxCookie: 128 })

export type TunnelLeg =
  | { leg: 'get' | 'post', cookie: string }
  | { leg: 'none' }
  | { leg: 'error', code: ErrorCode, status: number, reason: string }

/**
 * Decide whether a head opens a tunnel leg. Anything that is not a tunnel GET/POST is 'none'
 * (it belongs to the web server). The cookie is compared exactly by the pairing code; here it
 * is only trimmed and length-checked.
 */
export function classifyTunnelLeg (head: HttpHead, limits: Partial<CookieLimits> = {}): TunnelLeg {
  const { minCookie, maxCookie } = { ...DEFAULT_COOKIE_LIMITS, ...limits }
  if (head.method !== 'GET' && head.method !== 'POST') return { leg: 'none' }
  const cookies: string[] = []
  let marker = false
  for (const [k, v] of head.headers) {
    const name = k.toLowerCase()
    if (name === COOKIE_HEADER) cookies.push(v.trim())
    else if (head.method === 'GET' && name === 'accept' && hasMediaType(v)) marker = true
    else if (head.method === 'POST' && name === 'content-type' && hasMediaType(v)) marker = true
  }
  let cookie: string | undefined
  if (cookies.length > 0) {
    cookie = cookies[0]!
    if (cookies.some((c) => c !== cookie)) {
      return { leg: 'error', code: 'TG_ERR_TUN_BAD_COOKIE', status: 400, reason: 'conflicting x-sessioncookie headers' }
    }
  } else {
    const q = queryCookie(head.target)
    if (q === null) {
      return {
        leg: 'error', code: 'TG_ERR_TUN_BAD_COOKIE', status: 400, reason: 'undecodable sessioncookie query parameter'
      }
    }
    cookie = q
  }
  if (cookie === undefined) {
    if (!marker) return { leg: 'none' }
    return {
      leg: 'error', code: 'TG_ERR_TUN_NO_COOKIE', status: 400, reason: `tunnel ${head.method} without x-sessioncookie`
    }
  }
  if (cookie.length < minCookie || cookie.length > maxCookie) {
    return {
      leg: 'error',
      code: 'TG_ERR_TUN_BAD_COOKIE',
      status: 400,
      reason: `x-sessioncookie length ${cookie.length} outside ${minCookie}..${maxCookie}`
    }
  }
  return { leg: head.method === 'GET' ? 'get' : 'post', cookie }
}

/** True when a media-type list (Accept, Content-Type) names the tunnel type. */
function hasMediaType (value: string): boolean {
  for (const part of value.split(',')) {
    if (part.split(';')[0]!.trim().toLowerCase() === TUNNEL_CONTENT_TYPE) return true
  }
  return false
}

/** The `sessioncookie` query value (percent-decoded, trimmed), undefined if absent, null if undecodable. */
function queryCookie (target: string): string | undefined | null {
  const q = target.indexOf('?')
  if (q === -1) return undefined
  const hash = target.indexOf('#', q)
  const query = target.slice(q + 1, hash === -1 ? undefined : hash)
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (name.toLowerCase() !== COOKIE_QUERY_PARAM) continue
    const raw = eq === -1 ? '' : pair.slice(eq + 1)
    try { return decodeURIComponent(raw).trim() } catch { return null }
  }
  return undefined
}

// ------------------------------------------------------------------------------------------
// Replies

/** DSS's deliberately-past date: keeps HTTP/1.0 caches away from the endless reply. */
export const TUNNEL_REPLY_DATE = 'Thu, 19 Aug 1982 18:30:00 GMT'
export const DEFAULT_SERVER_NAME = 'tunnelgate'

/**
 * The GET leg's reply (DSS template, RTSPSession.cpp). No Content-Length, no Transfer-Encoding
 * (clients would take them as the end of the stream), no x-server-ip-address (GStreamer and
 * QuickTime would reconnect their POST to it). An empty serverName omits the Server line.
 */
export function buildTunnelGetReply (opts: { serverName?: string } = {}): Buffer {
  const server = opts.serverName ?? DEFAULT_SERVER_NAME
  return Buffer.from(
    'HTTP/1.0 200 OK\r\n' +
    (server === '' ? '' : `Server: ${headerSafe(server)}\r\n`) +
    'Connection: close\r\n' +
    `Date: ${TUNNEL_REPLY_DATE}\r\n` +
    'Cache-Control: no-store\r\n' +
    'Pragma: no-cache\r\n' +
    `Content-Type: ${TUNNEL_CONTENT_TYPE}\r\n` +
    '\r\n',
    'latin1'
  )
}

/** A complete HTTP/1.0 error reply with a short text body; the caller closes after writing it. */
export function buildHttpError (status: number, reason: string, extraHeaders: Header[] = []): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`bad HTTP status ${status}`)
  const why = headerSafe(reason)
  const body = `${status} ${why}\n`
  let head = `HTTP/1.0 ${status} ${why}\r\nConnection: close\r\nCache-Control: no-store\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n`
  for (const [k, v] of extraHeaders) {
    if (!isToken(k)) throw new TypeError(`bad header name '${k}'`)
    head += `${k}: ${headerSafe(v)}\r\n`
  }
  return Buffer.from(`${head}\r\n${body}`, 'latin1')
}

/** Header values never carry CR/LF/NUL (no response splitting). */
function headerSafe (value: string): string { return value.replace(/[\r\n\x00]/g, ' ') }

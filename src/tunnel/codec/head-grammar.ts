/**
 * The one place that decides what a legal message head is, for HTTP (RFC 9112 §2–§5) and RTSP
 * (RFC 2326 §6–§7, which borrows HTTP/1.1's grammar). Both the port-80 front door and the RTSP
 * demuxer (client and backend side alike) parse heads through these functions only.
 *
 *   head         = start-line *( field-line EOL ) ; the blank line is found by the caller
 *   EOL          = CRLF / LF                        ; a bare LF is tolerated (RFC 9112 §2.2)
 *   field-line   = field-name ":" OWS field-value OWS
 *   field-name   = token
 *   field-value  = *( VCHAR / obs-text / SP / HTAB )
 *   obs-fold     = EOL 1*( SP / HTAB )              ; replaced by one SP
 *
 * Refused, never forwarded: a CR that does not end a line, NUL and every other control byte
 * but HTAB, whitespace before the first field line, a field name that is not a token.
 */
import type { Header } from './rtsp-message.js'

export type Grammar<T> = { ok: true, value: T } | { ok: false, reason: string }

/** tchar (RFC 9110 §5.6.2). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Bytes a field value may hold: VCHAR, obs-text, SP, HTAB. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
/** Bytes a request target may hold: VCHAR and obs-text (no SP, no control). */
const TARGET = /^[\x21-\x7e\x80-\xff]+$/

export function isToken (s: string): boolean { return TOKEN.test(s) }

/** A request line, `METHOD SP target SP version`, the version matching `version`. */
export interface RequestLine { method: string, target: string, version: string }

/**
 * Parse a start line that claims to be a request: exactly two single spaces, a token method, a
 * target of visible bytes and a version of the form PROTO/d.d accepted by `version`.
 */
export function parseRequestLine (line: string, version: RegExp): Grammar<RequestLine> {
  const bad = lineError(line)
  if (bad !== null) return fail(`${bad} in the request line '${printable(line)}'`)
  const a = line.indexOf(' ')
  const b = a === -1 ? -1 : line.indexOf(' ', a + 1)
  if (a <= 0 || b === -1 || line.indexOf(' ', b + 1) !== -1) return fail(`bad request line '${printable(line)}'`)
  const method = line.slice(0, a)
  const target = line.slice(a + 1, b)
  const ver = line.slice(b + 1)
  if (!TOKEN.test(method) || !TARGET.test(target) || !version.test(ver)) {
    return fail(`bad request line '${printable(line)}'`)
  }
  return { ok: true, value: { method, target, version: ver } }
}

/** An RTSP status line: `RTSP/d.d SP 3DIGIT [SP reason-phrase]`. */
export interface StatusLine { version: string, status: number, reason: string }

export function parseStatusLine (line: string): Grammar<StatusLine> {
  const bad = lineError(line)
  if (bad !== null) return fail(`${bad} in the status line '${printable(line)}'`)
  const m = /^(RTSP\/\d\.\d+) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(line)
  if (m === null) return fail(`bad status line '${printable(line)}'`)
  return { ok: true, value: { version: m[1]!, status: Number(m[2]), reason: m[3] ?? '' } }
}

/**
 * Split head text (from the start line up to, not including, the LF that ends the last line) into
 * lines: each LF ends a line and one CR before it is dropped. Any other CR is an error.
 */
export function splitLines (text: string): Grammar<string[]> {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    const trimmed = l.endsWith('\r') ? l.slice(0, -1) : l
    if (trimmed.includes('\r')) return fail(`bare CR in '${printable(trimmed)}'`)
    lines[i] = trimmed
  }
  return { ok: true, value: lines }
}

export type FieldsResult = { ok: true, value: Header[] } | { ok: false, reason: string, tooMany: boolean }

/** Field lines `lines[from…]` → headers (obs-fold joined with one SP); at most `maxHeaders`. */
export function parseFieldLines (lines: readonly string[], from: number, maxHeaders: number): FieldsResult {
  const headers: Header[] = []
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!
    if (line === '') return { ok: false, reason: 'empty line inside the head', tooMany: false }
    if (!FIELD_VALUE.test(line)) {
      return { ok: false, reason: `control byte in the field line '${printable(line)}'`, tooMany: false }
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (headers.length === 0) {
        return { ok: false, reason: `whitespace before the first field line '${printable(line)}'`, tooMany: false }
      }
      const last = headers[headers.length - 1]!
      last[1] = `${last[1]} ${line.trim()}`.trim()
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) return { ok: false, reason: `field line without a colon: '${printable(line)}'`, tooMany: false }
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) return { ok: false, reason: `bad field name '${printable(name)}'`, tooMany: false }
    if (headers.length >= maxHeaders) {
      return { ok: false, reason: `more than ${maxHeaders} header fields`, tooMany: true }
    }
    headers.push([name, line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')])
  }
  return { ok: true, value: headers }
}

/** Why a start line is not legal text (a control byte, a bare CR), or null. */
function lineError (line: string): string | null {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 0x0d) return 'bare CR'
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return `control byte 0x${c.toString(16).padStart(2, '0')}`
  }
  return null
}

function fail (reason: string): { ok: false, reason: string } { return { ok: false, reason } }

/** At most 64 characters of `s` with every byte outside printable ASCII shown as \xNN. */
export function printable (s: string): string {
  return s.slice(0, 64).replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

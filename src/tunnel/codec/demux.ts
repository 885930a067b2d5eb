/**
 * Byte stream → RTSP units, as on an RTSP/TCP connection (RFC 2326 §10.12, §15):
 *
 *   stream = *( interleaved-frame / rtsp-message / CR / LF )
 *
 * A unit starts at a unit boundary with '$' (interleaved frame) or a letter (message start
 * line: "RTSP/" → response, otherwise a request). Stray CR/LF between units are skipped
 * (live555 and others emit them). The parser is pure: push bytes in, get units out; it keeps
 * the partial tail itself. Frames that arrive whole in one chunk are returned as views into
 * that chunk (no copy).
 *
 * Bad input never throws: it yields a `{ kind: 'error' }` unit with a code. A malformed head
 * is skipped up to its blank line, so later messages still parse; a head that exceeds the
 * limit without a blank line, or an oversized body, is fatal for the stream (`fatal: true`).
 */
import type { ErrorCode } from '../../core/errors.js'
import { INTERLEAVED_HEADER, INTERLEAVED_MAGIC, type InterleavedFrame } from './interleaved.js'
import type { Header, RtspMessage } from './rtsp-message.js'
import { parseFieldLines, parseRequestLine, parseStatusLine, splitLines } from './head-grammar.js'

export interface DemuxLimits {
  /** Longest start line + headers, in bytes. */
  maxHeadBytes: number
  /** Most header lines in one message. */
  maxHeaders: number
  /** Largest Content-Length accepted. */
  maxBodyBytes: number
}

export const DEFAULT_DEMUX_LIMITS: Readonly<DemuxLimits> = Object.freeze({
  maxHeadBytes: 16384,
  maxHeaders: 64,
  maxBodyBytes: 1024 * 1024
})

export interface DemuxError {
  kind: 'error'
  code: ErrorCode
  reason: string
  /** The offending bytes (truncated to 256). */
  data: Buffer
  /** The stream cannot be resynchronised: close it. */
  fatal: boolean
  /** CSeq of the bad message, when one could be read (for a 400 reply). */
  cseq?: string
}

export type RtspUnit = (RtspMessage & { raw: Buffer }) | InterleavedFrame | DemuxError

const CR = 0x0d
const LF = 0x0a
const EMPTY = Buffer.alloc(0)

export class RtspDemuxer {
  readonly #limits: DemuxLimits
  #pending: Buffer = EMPTY
  #dead = false

  constructor (limits: Partial<DemuxLimits> = {}) { this.#limits = { ...DEFAULT_DEMUX_LIMITS, ...limits } }

  /** Bytes held while waiting for the rest of a unit. */
  get buffered (): number { return this.#pending.length }

  /**
   * When the held unit is a `$` frame whose 4-byte header is held: how many more bytes complete
   * it (pushing exactly those yields that one frame). 0 when nothing or something else is held.
   */
  get frameRemainder (): number {
    const p = this.#pending
    if (p.length < INTERLEAVED_HEADER || p[0] !== INTERLEAVED_MAGIC) return 0
    return INTERLEAVED_HEADER + ((p[2]! << 8) | p[3]!) - p.length
  }

  push (chunk: Buffer): RtspUnit[] {
    const out: RtspUnit[] = []
    if (this.#dead) return out
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    let off = 0
    while (off < buf.length) {
      const b = buf[off]!
      if (b === CR || b === LF) { off++; continue }
      if (b === INTERLEAVED_MAGIC) {
        if (buf.length - off < INTERLEAVED_HEADER) break
        const len = buf.readUInt16BE(off + 2)
        const end = off + INTERLEAVED_HEADER + len
        if (end > buf.length) break
        out.push({
          kind: 'frame',
          channel: buf[off + 1]!,
          payload: buf.subarray(off + INTERLEAVED_HEADER, end),
          raw: buf.subarray(off, end)
        })
        off = end
        continue
      }
      const headEnd = findHeadEnd(buf, off, this.#limits.maxHeadBytes)
      if (headEnd === -1) {
        if (buf.length - off > this.#limits.maxHeadBytes) {
          out.push(
            this.#fatal(
              'TG_ERR_RTSP_TOO_LARGE', `message head longer than ${this.#limits.maxHeadBytes} bytes`, buf.subarray(off)
            )
          )
          return out
        }
        break
      }
      const headText = buf.toString('latin1', off, headEnd.lineEnd)
      const parsed = parseHead(headText, this.#limits.maxHeaders)
      if (typeof parsed === 'string') {
        out.push({
          kind: 'error',
          code: parsed.startsWith('too many') ? 'TG_ERR_RTSP_TOO_LARGE' : 'TG_ERR_RTSP_MALFORMED',
          reason: parsed,
          data: clip(buf.subarray(off, headEnd.next)),
          fatal: false,
          ...cseqOf(headText)
        })
        off = headEnd.next
        continue
      }
      const lengthValue = headerValue(parsed.headers, 'content-length')
      let bodyLen = 0
      if (lengthValue !== undefined) {
        if (!/^\s*\d+\s*$/.test(lengthValue)) {
          // The body length is unknowable: the stream cannot be resynchronised.
          out.push(
            this.#fatal('TG_ERR_RTSP_MALFORMED', `bad Content-Length '${lengthValue}'`, buf.subarray(off, headEnd.next))
          )
          return out
        }
        bodyLen = Number(lengthValue)
        if (bodyLen > this.#limits.maxBodyBytes) {
          out.push(
            this.#fatal(
              'TG_ERR_RTSP_TOO_LARGE', `body of ${bodyLen} bytes exceeds ${this.#limits.maxBodyBytes}`,
              buf.subarray(off, headEnd.next)
            )
          )
          return out
        }
      }
      const end = headEnd.next + bodyLen
      if (end > buf.length) break
      const body = bodyLen === 0 ? EMPTY : Buffer.from(buf.subarray(headEnd.next, end))
      out.push({ ...parsed, body, raw: buf.subarray(off, end) })
      off = end
    }
    this.#pending = off >= buf.length ? EMPTY : Buffer.from(buf.subarray(off))
    buf = EMPTY
    return out
  }

  #fatal (code: ErrorCode, reason: string, data: Buffer): DemuxError {
    this.#dead = true
    this.#pending = EMPTY
    return { kind: 'error', code, reason, data: clip(data), fatal: true }
  }
}

function clip (b: Buffer): Buffer { return Buffer.from(b.subarray(0, 256)) }

/** Find the blank line ending a head (CRLFCRLF, or bare LF LF). */
function findHeadEnd (buf: Buffer, from: number, max: number): { lineEnd: number, next: number } | -1 {
  const limit = Math.min(buf.length, from + max + 4)
  for (let i = from; i < limit; i++) {
    if (buf[i] !== LF) continue
    // i is a LF; is the next line empty?
    if (buf[i + 1] === LF) return { lineEnd: i, next: i + 2 }
    if (buf[i + 1] === CR && buf[i + 2] === LF) return { lineEnd: i, next: i + 3 }
  }
  return -1
}

function headerValue (headers: Header[], lower: string): string | undefined {
  for (const [k, v] of headers) if (k.toLowerCase() === lower) return v
  return undefined
}

function cseqOf (text: string): { cseq?: string } {
  const m = /(?:^|\n)cseq[ \t]*:[ \t]*(\d{1,10})/i.exec(text)
  return m ? { cseq: m[1]! } : {}
}

type ParsedHead = Omit<RtspMessage, 'body'> & { kind: RtspMessage['kind'] }

/**
 * RTSP/1.0 and 2.0; other PROTO/d.d versions parse too, so the session can refuse an HTTP request inside the stream.
 */
const REQUEST_VERSION = /^[A-Z]{2,8}\/\d\.\d+$/

/** Parse a start line and headers (head-grammar.ts); returns the reason string on failure. */
export function parseHead (text: string, maxHeaders: number): RtspMessage | string {
  const lines = splitLines(text)
  if (!lines.ok) return lines.reason
  const start = lines.value[0] ?? ''
  const fields = parseFieldLines(lines.value, 1, maxHeaders)
  if (!fields.ok) return fields.tooMany ? `too many headers (${fields.reason})` : fields.reason
  const headers = fields.value
  if (start.startsWith('RTSP/')) {
    const s = parseStatusLine(start)
    if (!s.ok) return s.reason
    return {
      kind: 'response', version: s.value.version, status: s.value.status, reason: s.value.reason, headers, body: EMPTY
    }
  }
  const r = parseRequestLine(start, REQUEST_VERSION)
  if (!r.ok) return r.reason
  return {
    kind: 'request', method: r.value.method, uri: r.value.target, version: r.value.version, headers, body: EMPTY
  }
}
export type { ParsedHead }

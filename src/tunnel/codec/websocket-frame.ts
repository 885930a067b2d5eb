/**
 * WebSocket (RFC 6455) for RTSP over WebSocket: the opening handshake checked from an already
 * parsed HTTP head, and the frame codec. Pure: no sockets, no timers; bytes in, messages out.
 *
 *   handshake   GET <path> HTTP/1.1, Upgrade: websocket, Connection: Upgrade,
 *               Sec-WebSocket-Version: 13, Sec-WebSocket-Key: base64(16 bytes)
 *               → 101, Sec-WebSocket-Accept = base64(SHA-1(key + GUID)),
 *                 Sec-WebSocket-Protocol = the first offered subprotocol the server supports
 *                 (Chromium drops the connection unless the one it offered is echoed)
 *   frame       FIN RSV1-3 opcode | MASK len7 [len16 | len64] [mask key 4] payload
 *               client → server frames are masked (RFC 6455 §5.1), server → client are not;
 *               no extension is negotiated, so RSV bits must be 0.
 *
 * RTSP over WebSocket (ONVIF streaming spec §5.1.1.6, Axis media-stream-library): every binary
 * message carries part of the RTSP-over-TCP byte stream (RTSP text and `$`-framed RTP/RTCP).
 */
import { createHash } from 'node:crypto'
import type { ErrorCode } from '../../core/errors.js'
import type { Header } from './rtsp-message.js'
import type { HttpHead } from './http-head.js'

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** Subprotocols accepted for RTSP over WebSocket, in the server's order of preference. */
export const RTSP_WS_SUBPROTOCOLS: readonly string[] = Object.freeze(['binary', 'rtsp.onvif.org'])

export const OP_CONTINUATION = 0x0
export const OP_TEXT = 0x1
export const OP_BINARY = 0x2
export const OP_CLOSE = 0x8
export const OP_PING = 0x9
export const OP_PONG = 0xa

/** Close codes used by the gateway (RFC 6455 §7.4.1). */
export const CLOSE_NORMAL = 1000
export const CLOSE_GOING_AWAY = 1001
export const CLOSE_PROTOCOL_ERROR = 1002
export const CLOSE_TOO_BIG = 1009
export const CLOSE_INTERNAL = 1011

function header (head: { headers: Header[] }, name: string): string | undefined {
  const n = name.toLowerCase()
  for (const [k, v] of head.headers) if (k.toLowerCase() === n) return v.trim()
  return undefined
}

function tokens (value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map(s => s.trim().toLowerCase()).filter(s => s !== '')
}

/** True when the head asks for a WebSocket upgrade (whatever else is wrong with it). */
export function isWebSocketUpgrade (head: HttpHead): boolean {
  return tokens(header(head, 'Upgrade')).includes('websocket')
}

/** Path of a request target (origin-form or absolute-form), without query. */
export function targetPath (target: string): string {
  let t = target
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(t)
  if (abs !== null) t = t.slice(abs[0].length) || '/'
  const q = t.search(/[?#]/)
  return q === -1 ? t : t.slice(0, q)
}

/** Query parameters of a request target ('' values kept, first occurrence wins). */
export function targetQuery (target: string): Map<string, string> {
  const out = new Map<string, string>()
  const q = target.indexOf('?')
  if (q === -1) return out
  for (const part of target.slice(q + 1).split('#')[0]!.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = eq === -1 ? part : part.slice(0, eq)
    const v = eq === -1 ? '' : part.slice(eq + 1)
    let key: string
    let value: string
    try {
      key = decodeURIComponent(k.replace(/\+/g, ' '))
      value = decodeURIComponent(v.replace(/\+/g, ' '))
    } catch { continue }
    if (!out.has(key)) out.set(key, value)
  }
  return out
}

export function acceptKey (key: string): string { return createHash('sha1').update(key + WS_GUID).digest('base64') }

export type HandshakeResult =
  | { ok: true, key: string, protocol: string | null, path: string, query: Map<string, string>, reply: Buffer }
  | { ok: false, status: number, reason: string, code: 'TG_ERR_WS_HANDSHAKE', headers: Header[] }

/**
 * Check a WebSocket opening handshake (RFC 6455 §4.2.1) and build the 101 reply.
 * `protocols` are the subprotocols the server supports, in its order of preference. A client that
 * offers subprotocols none of which is supported is refused (400): it would drop the connection
 * anyway when the reply names none. A client that offers none is accepted without one.
 */
export function checkHandshake (head: HttpHead, protocols: readonly string[] = RTSP_WS_SUBPROTOCOLS): HandshakeResult {
  const bad = (status: number, reason: string, headers: Header[] = []): HandshakeResult => ({
    ok: false, status, reason, code: 'TG_ERR_WS_HANDSHAKE', headers
  })
  if (head.method !== 'GET') return bad(405, 'WebSocket upgrade needs GET', [['Allow', 'GET']])
  if (head.version !== 'HTTP/1.1') return bad(400, 'WebSocket upgrade needs HTTP/1.1')
  if (!tokens(header(head, 'Upgrade')).includes('websocket')) return bad(400, 'Upgrade: websocket missing')
  if (!tokens(header(head, 'Connection')).includes('upgrade')) return bad(400, 'Connection: Upgrade missing')
  const version = header(head, 'Sec-WebSocket-Version')
  if (version !== '13') return bad(426, 'unsupported Sec-WebSocket-Version', [['Sec-WebSocket-Version', '13']])
  const key = header(head, 'Sec-WebSocket-Key')
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    return bad(400, 'Sec-WebSocket-Key must be 16 bytes in base64')
  }
  const offered = (header(head, 'Sec-WebSocket-Protocol') ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  let protocol: string | null = null
  if (offered.length > 0) {
    // The client's order decides among the supported ones (RFC 6455 §4.2.2 leaves it to the server;
    // browsers expect one of theirs, and media-stream-library offers exactly one).
    protocol = offered.find(p => protocols.includes(p)) ?? null
    if (protocol === null) {
      return bad(
        400,
        `no supported subprotocol (offered: ${offered.join(', ').slice(0, 200)}; supported: ${protocols.join(', ')})`
      )
    }
  }
  let reply = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`
  if (protocol !== null) reply += `Sec-WebSocket-Protocol: ${protocol}\r\n`
  reply += '\r\n'
  return {
    ok: true,
    key,
    protocol,
    path: targetPath(head.target),
    query: targetQuery(head.target),
    reply: Buffer.from(reply, 'latin1')
  }
}

// ------------------------------------------------------------------------------------------
// Frames

/** Header of one frame with `len` payload bytes; `mask` (4 bytes) for client frames. */
export function frameHeader (opcode: number, len: number, opts: { fin?: boolean, mask?: Buffer } = {}): Buffer {
  const fin = opts.fin !== false
  const maskBit = opts.mask === undefined ? 0 : 0x80
  const extra = len < 126 ? 0 : len < 0x10000 ? 2 : 8
  const h = Buffer.allocUnsafe(2 + extra + (opts.mask === undefined ? 0 : 4))
  h[0] = (fin ? 0x80 : 0) | (opcode & 0x0f)
  if (extra === 0) h[1] = maskBit | len
  else if (extra === 2) {
    h[1] = maskBit | 126
    h.writeUInt16BE(len, 2)
  } else { h[1] = maskBit | 127; h.writeBigUInt64BE(BigInt(len), 2) }
  if (opts.mask !== undefined) opts.mask.copy(h, 2 + extra, 0, 4)
  return h
}

/** XOR `data` with a 4-byte mask in place (RFC 6455 §5.3), starting at mask offset `offset`. */
export function applyMask (data: Buffer, mask: Buffer, offset = 0): void {
  for (let i = 0; i < data.length; i++) data[i]! ^= mask[(i + offset) & 3]!
}

/** One complete frame (header + payload); with `mask` the payload is masked (client frames). */
export function encodeFrame (opcode: number, payload: Buffer, opts: { fin?: boolean, mask?: Buffer } = {}): Buffer {
  const h = frameHeader(opcode, payload.length, opts)
  const body = Buffer.from(payload)
  if (opts.mask !== undefined) applyMask(body, opts.mask)
  return Buffer.concat([h, body])
}

/** A close frame's payload: 2-byte code + UTF-8 reason (cut to fit the 125-byte control limit). */
export function closePayload (code: number, reason = ''): Buffer {
  const r = Buffer.from(reason, 'utf8').subarray(0, 123)
  const b = Buffer.allocUnsafe(2 + r.length)
  b.writeUInt16BE(code, 0)
  r.copy(b, 2)
  return b
}

export type WsEvent =
  | { kind: 'message', binary: boolean, data: Buffer }
  | { kind: 'ping', data: Buffer }
  | { kind: 'pong', data: Buffer }
  | { kind: 'close', code: number | null, reason: string }
  | { kind: 'error', code: ErrorCode, closeCode: number, reason: string }

export interface WsDecoderOptions {
  /** Largest message (all fragments together), in bytes. */
  maxMessageBytes: number
  /** Frames from a client must be masked (true for a server). */
  requireMask: boolean
}

const EMPTY = Buffer.alloc(0)

/** Valid close codes a peer may send (RFC 6455 §7.4). */
function validCloseCode (c: number): boolean {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)
}

/**
 * Streaming frame decoder: push bytes split anywhere, get whole messages (fragments joined) and
 * control frames. After an 'error' or a 'close' event it yields nothing more.
 */
export class WsFrameDecoder {
  readonly #opts: WsDecoderOptions
  #buf: Buffer = EMPTY
  #fragments: Buffer[] = []
  #fragmentBytes = 0
  #fragmentBinary = true
  #inMessage = false
  #done = false

  constructor (opts: Partial<WsDecoderOptions> = {}) {
    this.#opts = { maxMessageBytes: 1024 * 1024, requireMask: true, ...opts }
  }

  get done (): boolean { return this.#done }
  /** Bytes held (an incomplete frame, fragments of an unfinished message). */
  get buffered (): number { return this.#buf.length + this.#fragmentBytes }

  push (chunk: Buffer): WsEvent[] {
    if (this.#done) return []
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    const out: WsEvent[] = []
    const fail = (closeCode: number, reason: string, code: ErrorCode = 'TG_ERR_WS_PROTOCOL'): WsEvent[] => {
      this.#done = true
      this.#buf = EMPTY
      this.#fragments = []
      out.push({ kind: 'error', code, closeCode, reason })
      return out
    }
    for (;;) {
      const b = this.#buf
      if (b.length < 2) break
      const fin = (b[0]! & 0x80) !== 0
      const rsv = b[0]! & 0x70
      const opcode = b[0]! & 0x0f
      const masked = (b[1]! & 0x80) !== 0
      let len = b[1]! & 0x7f
      let off = 2
      if (rsv !== 0) return fail(CLOSE_PROTOCOL_ERROR, 'reserved bits set (no extension negotiated)')
      if (![OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG].includes(opcode)) {
        return fail(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`)
      }
      const control = opcode >= 0x8
      if (control && (!fin || len > 125)) {
        return fail(CLOSE_PROTOCOL_ERROR, 'control frame fragmented or longer than 125 bytes')
      }
      if (masked !== this.#opts.requireMask) {
        return fail(CLOSE_PROTOCOL_ERROR, this.#opts.requireMask ? 'unmasked client frame' : 'masked server frame')
      }
      if (len === 126) {
        if (b.length < 4) break
        len = b.readUInt16BE(2)
        off = 4
        if (len < 126) return fail(CLOSE_PROTOCOL_ERROR, 'length not in its shortest form')
      } else if (len === 127) {
        if (b.length < 10) break
        const big = b.readBigUInt64BE(2)
        if (big > BigInt(Number.MAX_SAFE_INTEGER) || big >= 1n << 63n) {
          return fail(CLOSE_TOO_BIG, 'frame length too large', 'TG_ERR_WS_TOO_LARGE')
        }
        len = Number(big)
        off = 10
        if (len < 0x10000) return fail(CLOSE_PROTOCOL_ERROR, 'length not in its shortest form')
      }
      // Refuse an oversized message from its header, before buffering its payload.
      if (!control && (this.#inMessage ? this.#fragmentBytes : 0) + len > this.#opts.maxMessageBytes) {
        return fail(CLOSE_TOO_BIG, `message over ${this.#opts.maxMessageBytes} bytes`, 'TG_ERR_WS_TOO_LARGE')
      }
      const maskOff = off
      if (masked) off += 4
      if (b.length < off + len) break
      const payload = Buffer.from(b.subarray(off, off + len))
      if (masked) applyMask(payload, b.subarray(maskOff, maskOff + 4))
      this.#buf = b.length === off + len ? EMPTY : b.subarray(off + len)
      if (control) {
        if (opcode === OP_PING) { out.push({ kind: 'ping', data: payload }); continue }
        if (opcode === OP_PONG) { out.push({ kind: 'pong', data: payload }); continue }
        // close
        if (payload.length === 1) return fail(CLOSE_PROTOCOL_ERROR, 'close frame with a 1-byte payload')
        let code: number | null = null
        let reason = ''
        if (payload.length >= 2) {
          code = payload.readUInt16BE(0)
          if (!validCloseCode(code)) return fail(CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`)
          reason = payload.toString('utf8', 2)
        }
        this.#done = true
        this.#buf = EMPTY
        out.push({ kind: 'close', code, reason })
        return out
      }
      if (opcode === OP_CONTINUATION) {
        if (!this.#inMessage) return fail(CLOSE_PROTOCOL_ERROR, 'continuation frame without a message')
      } else {
        if (this.#inMessage) return fail(CLOSE_PROTOCOL_ERROR, 'new message before the previous one ended')
        this.#inMessage = true
        this.#fragmentBinary = opcode === OP_BINARY
      }
      if (payload.length > 0) { this.#fragments.push(payload); this.#fragmentBytes += payload.length }
      if (fin) {
        const data = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments)
        out.push({ kind: 'message', binary: this.#fragmentBinary, data })
        this.#fragments = []
        this.#fragmentBytes = 0
        this.#inMessage = false
      }
    }
    return out
  }
}

/** The key a WebSocket session is hashed by (to a worker or relay node): its random handshake key. */
export function webSocketKey (head: HttpHead): string {
  for (const [k, v] of head.headers) if (k.toLowerCase() === 'sec-websocket-key') return `ws:${v.trim()}`
  return `ws:${head.target}`
}

/**
 * A raw-socket QuickTime tunnel client for integration tests. Every byte it sends is written
 * literally (no HTTP library), so tests control versions, header spelling, segmenting and
 * garbage exactly:
 *
 * - GetLeg: writes a GET head, reads the exact reply head, then demuxes the endless reply body
 *   (RTSP responses, server requests, `$` frames) with the project's RtspDemuxer and keeps every
 *   body byte for byte-identical checks. Can write raw bytes upstream (live555-style RTCP).
 * - PostLeg: writes a POST head (optionally with body bytes in the same write), then base64 per
 *   message, arbitrary raw bytes, or bytes split at given offsets.
 * - TunnelClient: a GET + POST pair with CSeq numbering and request/response helpers.
 */
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { ownerOf } from '../../src/balancer/hrw.js'
import { RtspDemuxer, type RtspUnit } from '../../src/tunnel/codec/demux.js'
import { getHeader, type Header, type RtspRequest, type RtspResponse } from '../../src/tunnel/codec/rtsp-message.js'
import type { InterleavedFrame } from '../../src/tunnel/codec/interleaved.js'
import { pause, waitFor } from './wait.js'

export type Unit = RtspUnit
/** A response as the GET read it; `header(name)` looks a header up (case-insensitive). */
export type Response = RtspResponse & { raw: Buffer, header: (name: string) => string | undefined }
export type Request = RtspRequest & { raw: Buffer }

const openSockets = new Set<net.Socket>()

/** Destroy every client socket opened through connect() (test cleanup, also after a failure). */
export function destroyAllClients (): void {
  for (const s of openSockets) s.destroy()
  openSockets.clear()
}

/**
 * A client connection (tracked for destroyAllClients); `localAddress` picks a loopback source address (127.0.0.0/8 all
 * reach 127.0.0.1).
 */
export function connect (port: number, host = '127.0.0.1', localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, noDelay: true, ...(localAddress === undefined ? {} : { localAddress }) })
    openSockets.add(s)
    s.once('close', () => openSockets.delete(s))
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  })
}

/** Write and wait for the bytes to be handed to the kernel. */
/**
 * Write `bytes` on a connection of its own; everything received (latin1) until the peer closed or `timeoutMs`
 * passed.
 */
export async function exchangeRaw (port: number, bytes: Buffer | string, timeoutMs = 4000): Promise<string> {
  const s = await connect(port)
  let got = ''
  s.on('data', (d: Buffer) => { got += d.toString('latin1') })
  const closed = new Promise<void>(resolve => s.once('close', () => resolve()))
  s.write(bytes)
  await Promise.race([closed, new Promise(resolve => setTimeout(resolve, timeoutMs))])
  s.destroy()
  return got
}

export function writeAsync (s: net.Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.write(data, err => { if (err) reject(err); else resolve() })
  })
}

/** Serialize an RTSP request (CRLF, Content-Length added for a body). */
export function rtspRequest (
  method: string,
  uri: string,
  cseq: number | string | null,
  headers: Header[] = [],
  body: string | Buffer = '',
  version = 'RTSP/1.0'
): Buffer {
  let head = `${method} ${uri} ${version}\r\n`
  if (cseq !== null) head += `CSeq: ${cseq}\r\n`
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')
  if (b.length > 0) head += `Content-Length: ${b.length}\r\n`
  return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), b])
}

/** Serialize an RTSP response. */
export function rtspResponse (
  status: number,
  reason: string,
  headers: Header[] = [],
  body: string | Buffer = ''
): Buffer {
  let head = `RTSP/1.0 ${status} ${reason}\r\n`
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')
  if (b.length > 0) head += `Content-Length: ${b.length}\r\n`
  return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), b])
}

export function frame (channel: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4)
  h[0] = 0x24
  h[1] = channel
  h.writeUInt16BE(payload.length, 2)
  return Buffer.concat([h, payload])
}

/** Deterministic pseudo-random bytes (so failures reproduce). */
export function patternBytes (n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff }
  return b
}

export function b64 (data: Buffer | string): string {
  return (Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1')).toString('base64')
}

let cookieCounter = 0
/** A fresh cookie of `length` characters (hex-ish, unique per process). */
export function newCookie (length = 22): string {
  // Counter first: slice(-length) of pid+counter+time+filler used to cut the counter off, so two
  // cookies made in the same millisecond were equal (a concurrent test got "second GET" refusals).
  const base = `${(++cookieCounter).toString(16)}${Date.now().toString(16)}${process.pid.toString(16)}`
  let s = base
  while (s.length < length) s += 'abcdef0123456789'
  return s.slice(0, length)
}

export interface LegOptions {
  cookie?: string | null
  /** Request target (default '/live/cam1'). */
  path?: string
  version?: 'HTTP/1.0' | 'HTTP/1.1'
  /** Header name used for the cookie (default 'x-sessioncookie'). */
  cookieHeader?: string
  /** Extra header lines, written after the standard ones. */
  headers?: Header[]
  /** Replace the standard header set entirely (the cookie line is still added unless cookie is null). */
  onlyHeaders?: Header[]
}

function legHead (method: 'GET' | 'POST', o: LegOptions): string {
  const version = o.version ?? 'HTTP/1.0'
  let head = `${method} ${o.path ?? '/live/cam1'} ${version}\r\n`
  const std: Header[] =
    o.onlyHeaders ??
    (method === 'GET'
      ? [
          ['User-Agent', 'tg-test/1.0'],
          ['Accept', 'application/x-rtsp-tunnelled'],
          ['Pragma', 'no-cache'],
          ['Cache-Control', 'no-cache']
        ]
      : [
          ['User-Agent', 'tg-test/1.0'],
          ['Content-Type', 'application/x-rtsp-tunnelled'],
          ['Pragma', 'no-cache'],
          ['Cache-Control', 'no-cache'],
          ['Content-Length', '32767'],
          ['Expires', 'Sun, 9 Jan 1972 00:00:00 GMT']
        ])
  if (o.cookie !== null && o.cookie !== undefined) head += `${o.cookieHeader ?? 'x-sessioncookie'}: ${o.cookie}\r\n`
  for (const [k, v] of std) head += `${k}: ${v}\r\n`
  for (const [k, v] of o.headers ?? []) head += `${k}: ${v}\r\n`
  return head + '\r\n'
}

/** Socket bookkeeping shared by both legs. */
class Leg {
  readonly socket: net.Socket
  closed = false
  /** The peer sent FIN. */
  ended = false
  closedAt = 0
  readonly #closeWaiters: Array<() => void> = []

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('error', () => {})
    socket.on('end', () => { this.ended = true })
    socket.on('close', () => {
      this.closed = true
      this.closedAt = Date.now()
      for (const w of this.#closeWaiters) w()
    })
  }

  /** Resolves when the socket is fully closed; rejects after `timeoutMs`. */
  waitClosed (timeoutMs = 3000, what = 'leg close'): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs)
      this.#closeWaiters.push(() => { clearTimeout(t); resolve() })
    })
  }

  write (data: Buffer | string): Promise<void> { return writeAsync(this.socket, data) }
  end (): void { this.socket.end() }
  destroy (): void { this.socket.destroy() }
}

export interface ReplyHead {
  /** The exact head text, final blank line included. */
  text: string
  statusLine: string
  headers: Header[]
}

export class GetLeg extends Leg {
  readonly cookie: string | null
  head: ReplyHead | null = null
  /** Bytes before the end of the reply head (or everything, when no head has ended yet). */
  #headBuf: Buffer = Buffer.alloc(0)
  readonly #bodyChunks: Buffer[] = []
  #bodyLength = 0
  readonly #demux = new RtspDemuxer({ maxBodyBytes: 16 * 1024 * 1024 })
  readonly units: Unit[] = []
  /** Called with each `$` frame as it arrives. */
  onFrame: ((channel: number, payload: Buffer) => void) | undefined
  /** Keep every body byte and frame (false: count them and hand frames to onFrame only, as a player). */
  retain = true
  /** Index of the first unit not yet taken by next(). */
  #cursor = 0

  constructor (socket: net.Socket, cookie: string | null) {
    super(socket)
    this.cookie = cookie
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
  }

  static async open (port: number, o: LegOptions = {}, extraBytes?: Buffer | string): Promise<GetLeg> {
    const s = await connect(port)
    const cookie = o.cookie === undefined ? newCookie() : o.cookie
    const leg = new GetLeg(s, cookie)
    const head = Buffer.from(legHead('GET', { ...o, cookie }), 'latin1')
    await leg.write(extraBytes === undefined ? head : Buffer.concat([head, Buffer.from(extraBytes)]))
    return leg
  }

  #onData (chunk: Buffer): void {
    if (this.head === null) {
      this.#headBuf = Buffer.concat([this.#headBuf, chunk])
      const end = this.#headBuf.indexOf('\r\n\r\n')
      if (end === -1) return
      const text = this.#headBuf.toString('latin1', 0, end + 4)
      const lines = text.slice(0, -4).split('\r\n')
      const headers: Header[] = lines.slice(1).map(l => {
        const i = l.indexOf(':')
        return [l.slice(0, i), l.slice(i + 1).trim()] as Header
      })
      this.head = { text, statusLine: lines[0]!, headers }
      chunk = this.#headBuf.subarray(end + 4)
      this.#headBuf = this.#headBuf.subarray(0, end + 4)
      if (chunk.length === 0) return
    }
    if (this.retain) this.#bodyChunks.push(chunk)
    this.#bodyLength += chunk.length
    for (const u of this.#demux.push(chunk)) {
      if (u.kind === 'frame') {
        this.onFrame?.(u.channel, Buffer.from(u.payload))
        if (this.retain) this.units.push({ ...u, raw: Buffer.from(u.raw), payload: Buffer.from(u.payload) })
        continue
      }
      // Not enumerable: deep comparisons of units see the message alone.
      if (u.kind === 'response') Object.defineProperty(u, 'header', { value: (name: string) => getHeader(u, name) })
      this.units.push(u)
    }
  }

  /** Every byte received so far (head included). */
  get allBytes (): Buffer { return Buffer.concat([this.#headBuf, ...this.#bodyChunks]) }
  /** Every byte received after the reply head. */
  get body (): Buffer { return Buffer.concat(this.#bodyChunks) }
  get bodyLength (): number { return this.#bodyLength }

  /** Wait for the complete reply head. */
  async readHead (timeoutMs = 2000): Promise<ReplyHead> {
    return await waitFor(() => this.head, 'the GET reply head', timeoutMs)
  }

  /** The raw bytes received when the connection ended without a full head (e.g. an HTTP error). */
  get rawBeforeHead (): string { return this.#headBuf.toString('latin1') }

  responses (): Response[] { return this.units.filter((u): u is Response => u.kind === 'response') }
  requests (): Request[] { return this.units.filter((u): u is Request => u.kind === 'request') }
  frames (): InterleavedFrame[] { return this.units.filter((u): u is InterleavedFrame => u.kind === 'frame') }

  /** Wait for the response carrying `cseq`. */
  async response (cseq: number | string, timeoutMs = 3000): Promise<Response> {
    const c = String(cseq)
    return await waitFor(() => this.responses().find(r => getHeader(r, 'CSeq') === c), `response CSeq ${c}`, timeoutMs)
  }

  /** Wait for the next unit not yet taken (in arrival order), optionally skipping frames. */
  async next (opts: { skipFrames?: boolean, timeoutMs?: number } = {}): Promise<Unit> {
    return await waitFor(() => {
      while (this.#cursor < this.units.length) {
        const u = this.units[this.#cursor++]!
        if (opts.skipFrames === true && u.kind === 'frame') continue
        return u
      }
      return undefined
    }, 'the next unit on the GET', opts.timeoutMs ?? 3000)
  }
}

export class PostLeg extends Leg {
  readonly cookie: string | null
  /** Anything the gateway wrote on the POST connection (it should stay silent, apart from 100 Continue). */
  received: Buffer = Buffer.alloc(0)

  constructor (socket: net.Socket, cookie: string | null) {
    super(socket)
    this.cookie = cookie
    socket.on('data', (chunk: Buffer) => { this.received = Buffer.concat([this.received, chunk]) })
  }

  /** Open a POST; `body` (raw bytes, already encoded) goes in the same write as the head. */
  static async open (port: number, o: LegOptions = {}, body?: Buffer | string): Promise<PostLeg> {
    const s = await connect(port)
    const cookie = o.cookie === undefined ? newCookie() : o.cookie
    const leg = new PostLeg(s, cookie)
    const head = Buffer.from(legHead('POST', { ...o, cookie }), 'latin1')
    await leg.write(body === undefined ? head : Buffer.concat([head, Buffer.from(body)]))
    return leg
  }

  /** One message, base64 with its own padding (FFmpeg/live555/GStreamer style). */
  async send (message: Buffer | string): Promise<void> { await this.write(b64(message)) }

  /** Raw bytes as they are (already base64, garbage, chunked framing…). */
  async sendRaw (bytes: Buffer | string): Promise<void> { await this.write(bytes) }

  /** Write `bytes` in pieces cut at `offsets`, with `gapMs` between writes so they travel as separate segments. */
  async sendSplit (bytes: Buffer | string, offsets: number[], gapMs = 2): Promise<void> {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1')
    let prev = 0
    for (const off of [...offsets, b.length]) {
      if (off > prev) {
        await this.write(b.subarray(prev, off))
        if (off < b.length) await pause(gapMs)
      }
      prev = off
    }
  }
}

export interface TunnelOptions {
  cookie?: string
  path?: string
  version?: 'HTTP/1.0' | 'HTTP/1.1'
  getHeaders?: Header[]
  postHeaders?: Header[]
  /** Public RTSP URL used in requests (default rtsp://gw.example.net/live/cam1). */
  url?: string
  /** Wait this long for the GET's reply head (default 2000 ms). */
  headTimeoutMs?: number
  /** Wait this long for each reply (default 3000 ms). */
  requestTimeoutMs?: number
  /** As a player: remember the Session of a SETUP 200 and send it on every later request but DESCRIBE and OPTIONS. */
  keepSession?: boolean
  /** Keep every byte and frame the GET reads (default true; see GetLeg.retain). */
  retain?: boolean
}

/** A paired tunnel: GET opened and its head read, then a POST with the same cookie. */
export class TunnelClient {
  readonly port: number
  readonly cookie: string
  readonly url: string
  readonly get: GetLeg
  post: PostLeg
  readonly extraPosts: PostLeg[] = []
  cseq = 0
  /** The session a SETUP 200 gave (kept only with `keepSession`). */
  session: string | undefined
  readonly #o: TunnelOptions

  private constructor (port: number, cookie: string, url: string, get: GetLeg, post: PostLeg, o: TunnelOptions) {
    this.port = port
    this.cookie = cookie
    this.url = url
    this.get = get
    this.post = post
    this.#o = o
  }

  static async open (port: number, o: TunnelOptions = {}): Promise<TunnelClient> {
    const cookie = o.cookie ?? newCookie()
    const path = o.path ?? '/live/cam1'
    const get = await GetLeg.open(port, { cookie, path, version: o.version, headers: o.getHeaders })
    get.retain = o.retain ?? true
    await get.readHead(o.headTimeoutMs)
    const post = await PostLeg.open(port, { cookie, path, version: o.version, headers: o.postHeaders })
    return new TunnelClient(port, cookie, o.url ?? `rtsp://gw.example.net${path}`, get, post, o)
  }

  /**
   * A tunnel as a player uses it: the GET must be answered 200, the session is kept, replies may take
   * 10 s, frames go to onFrame only.
   */
  static async player (port: number, path: string, host = '127.0.0.1'): Promise<TunnelClient> {
    const c = await TunnelClient.open(port, {
      path,
      url: `rtsp://${host}:${port}${path}`,
      keepSession: true,
      requestTimeoutMs: 10_000,
      retain: false
    })
    if (!/^HTTP\/1\.[01] 200(\s|$)/.test(c.get.head?.statusLine ?? '')) {
      c.close()
      throw new Error(`tunnel GET answered ${c.get.head?.statusLine ?? 'nothing'}`)
    }
    return c
  }

  /** Called with each `$` frame the GET reads. */
  get onFrame (): GetLeg['onFrame'] {
    return this.get.onFrame
  }

  set onFrame (cb: GetLeg['onFrame']) {
    this.get.onFrame = cb
  }

  /** Open another POST leg with this tunnel's cookie (re-POST, overlapping POSTs). */
  async openPost (body?: Buffer | string, o: LegOptions = {}): Promise<PostLeg> {
    const p = await PostLeg.open(this.port, { path: new URL(this.url).pathname, ...o, cookie: this.cookie }, body)
    this.extraPosts.push(p)
    return p
  }

  /** Build the next request (CSeq auto-numbered); returns it and its CSeq. */
  build (
    method: string,
    uri: string = this.url,
    headers: Header[] = [],
    body: string | Buffer = ''
  ): { bytes: Buffer, cseq: number } {
    const cseq = ++this.cseq
    return { bytes: rtspRequest(method, uri, cseq, headers, body), cseq }
  }

  /** Send a request on the POST (base64, own padding) and wait for its response on the GET. */
  async request (
    method: string,
    uri: string = this.url,
    headers: Header[] | Record<string, string> = [],
    opts: { post?: PostLeg, timeoutMs?: number, body?: string | Buffer } = {}
  ): Promise<Response> {
    const lines = Array.isArray(headers) ? headers : Object.entries(headers)
    const withSession =
      this.#o.keepSession === true && this.session !== undefined && method !== 'DESCRIBE' && method !== 'OPTIONS'
    const { bytes, cseq } = this.build(
      method,
      uri,
      withSession ? [['Session', this.session!], ...lines] : lines,
      opts.body
    )
    await (opts.post ?? this.post).send(bytes)
    const r = await this.get.response(cseq, opts.timeoutMs ?? this.#o.requestTimeoutMs)
    if (this.#o.keepSession === true && method === 'SETUP' && r.status === 200) {
      this.session = r.header('session')?.split(';')[0]?.trim()
    }
    return r
  }

  /** DESCRIBE + SETUP (one track, TCP interleaved) + PLAY; returns the session id. */
  async play (
    opts: { track?: string, transport?: string } = {}
  ): Promise<{ session: string, describe: Response, setup: Response, play: Response }> {
    const describe = await this.request('DESCRIBE', this.url, [['Accept', 'application/sdp']])
    const base = getHeader(describe, 'Content-Base') ?? `${this.url}/`
    const setup = await this.request('SETUP', `${base}${opts.track ?? 'trackID=1'}`, [
      ['Transport', opts.transport ?? 'RTP/AVP/TCP;unicast;interleaved=0-1']
    ])
    const session = (getHeader(setup, 'Session') ?? '').split(';')[0]!
    const play = await this.request('PLAY', base, [
      ['Session', session],
      ['Range', 'npt=0.000-']
    ])
    return { session, describe, setup, play }
  }

  close (): void {
    this.post.destroy()
    for (const p of this.extraPosts) p.destroy()
    this.get.destroy()
  }
}

/** A minimal tunnel GET (cookie and Accept only) from a chosen loopback source address. */
export async function getLegFrom (
  port: number,
  localAddress: string,
  cookie: string,
  path = '/live/cam1'
): Promise<GetLeg> {
  const leg = new GetLeg(await connect(port, '127.0.0.1', localAddress), cookie)
  await leg.write(`GET ${path} HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`)
  return leg
}

/** A minimal tunnel POST from a chosen loopback source address, followed by `body` (base64 text). */
export async function postLegFrom (
  port: number,
  localAddress: string,
  cookie: string,
  body = '',
  path = '/live/cam1'
): Promise<PostLeg> {
  const leg = new PostLeg(await connect(port, '127.0.0.1', localAddress), cookie)
  await leg.write(
    `POST ${path} HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n${body}`
  )
  return leg
}

/** The status line a GET got (the 200 tunnel reply or an HTTP error; 'closed' for none), waiting for it. */
export async function getStatusLine (leg: GetLeg, timeoutMs = 3000): Promise<string> {
  return await waitFor(
    () => leg.head?.statusLine ?? (leg.closed ? (leg.rawBeforeHead.split('\r\n')[0] ?? 'closed') : undefined),
    'a GET status',
    timeoutMs
  )
}

/** A cookie that rendezvous hashing over workers '0' and '1' gives to worker `want`. */
export function cookieForWorker (want: 0 | 1 | number): string {
  for (;;) {
    const c = randomBytes(16).toString('base64url')
    if (ownerOf(c, [{ id: '0', weight: 1 }, { id: '1', weight: 1 }]) === String(want)) return c
  }
}

/**
 * A plain RTSP/TCP client (no tunnel) on the gateway's port that has sent DESCRIBE, SETUP of
 * trackID=1 (interleaved 0-1) and PLAY for `url` and got their replies; every unit it receives is
 * collected in `units` (frames copied out of the read). Tracked for destroyAllClients.
 */
export async function playPlainRtsp (
  port: number,
  url = 'rtsp://gw.example.net/live/cam1'
): Promise<{ socket: net.Socket, units: RtspUnit[] }> {
  const socket = await connect(port)
  const demux = new RtspDemuxer()
  const units: RtspUnit[] = []
  socket.on('data', (c: Buffer) => {
    for (const u of demux.push(c)) {
      units.push(u.kind === 'frame' ? { ...u, raw: Buffer.from(u.raw), payload: Buffer.from(u.payload) } : u)
    }
  })
  const ask = async (method: string, uri: string, cseq: number, headers: Header[] = []): Promise<RtspUnit> => {
    socket.write(rtspRequest(method, uri, cseq, headers))
    return await waitFor(
      () => units.find(u => u.kind === 'response' && getHeader(u, 'CSeq') === String(cseq)),
      `${method} reply`
    )
  }
  await ask('DESCRIBE', url, 1)
  const setup = await ask('SETUP', `${url}/trackID=1`, 2, [['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']])
  const session = (setup.kind === 'response' ? getHeader(setup, 'Session') ?? '' : '').split(';')[0]!
  await ask('PLAY', url, 3, [['Session', session]])
  return { socket, units }
}

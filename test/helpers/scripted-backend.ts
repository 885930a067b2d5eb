/**
 * A scripted RTSP backend for integration tests: a net.Server on 127.0.0.1:0 that demuxes what
 * it receives with the project's RtspDemuxer, records everything per connection (raw bytes,
 * units, open / FIN / close times) and answers through a script function.
 *
 * `dssScript()` behaves like Darwin Streaming Server as seen through the reference §7:
 * Content-Base = request URL + '/', SDP with `a=control:trackID=1` (or absolute controls on its
 * own address), SETUP replies with its own `interleaved=` choice and `;ssrc=`, 64-bit decimal
 * Session ids without timeout, RTP-Info on PLAY, optional digest auth. Tests can also write raw
 * bytes, stream `$` frames, send server-originated requests, stall, close or send garbage.
 */
import net from 'node:net'
import { createHash } from 'node:crypto'
import { RtspDemuxer, type RtspUnit } from '../../src/tunnel/codec/demux.js'
import { getHeader, type Header, type RtspRequest } from '../../src/tunnel/codec/rtsp-message.js'
import { frame, patternBytes, rtspResponse } from './tunnel-client.js'
import { waitFor } from './wait.js'

export type Request = RtspRequest & { raw: Buffer }

export class BackendConn {
  readonly id: number
  readonly socket: net.Socket
  readonly backend: ScriptedBackend
  readonly chunks: Buffer[] = []
  readonly units: RtspUnit[] = []
  readonly openedAt = Date.now()
  /** When the gateway's FIN arrived (0 = not yet). */
  finAt = 0
  closedAt = 0
  /** Per-connection scratch space for scripts. */
  readonly state: Record<string, unknown> = {}
  readonly #demux = new RtspDemuxer({ maxBodyBytes: 16 * 1024 * 1024 })
  /** Bytes written by the backend (all writes, accepted or queued). */
  written = 0

  constructor (id: number, socket: net.Socket, backend: ScriptedBackend) {
    this.id = id
    this.socket = socket
    this.backend = backend
  }

  get closed (): boolean {
    return this.closedAt !== 0
  }

  get raw (): Buffer {
    return Buffer.concat(this.chunks)
  }

  requests (): Request[] {
    return this.units.filter((u): u is Request => u.kind === 'request')
  }

  frames (): Array<Extract<RtspUnit, { kind: 'frame' }>> {
    return this.units.filter((u): u is Extract<RtspUnit, { kind: 'frame' }> => u.kind === 'frame')
  }

  /** @internal */
  feed (chunk: Buffer): RtspUnit[] {
    this.chunks.push(chunk)
    const units = this.#demux
      .push(chunk)
      .map(u => u.kind === 'frame' ? { ...u, raw: Buffer.from(u.raw), payload: Buffer.from(u.payload) } : u)
    this.units.push(...units)
    return units
  }

  send (data: Buffer | string): boolean {
    if (this.socket.destroyed) return false
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1')
    this.written += b.length
    return this.socket.write(b)
  }

  /** Answer `req` echoing its CSeq. */
  respond (
    req: RtspRequest,
    status: number,
    reason: string,
    headers: Header[] = [],
    body: string | Buffer = ''
  ): boolean {
    const cseq = getHeader(req, 'CSeq')
    return this.send(
      rtspResponse(status, reason, [...(cseq === undefined ? [] : [['CSeq', cseq] as Header]), ...headers], body)
    )
  }

  sendFrame (channel: number, payload: Buffer): boolean {
    return this.send(frame(channel, payload))
  }

  /** Wait until `n` units matching `pred` have arrived. */
  async waitUnits (
    pred: (u: RtspUnit) => boolean,
    n = 1,
    timeoutMs = 3000,
    what = 'units at the backend'
  ): Promise<RtspUnit[]> {
    return await waitFor(
      () => {
        const m = this.units.filter(pred)
        return m.length >= n ? m : undefined
      },
      what,
      timeoutMs
    )
  }

  async waitRequest (method: string, n = 1, timeoutMs = 3000): Promise<Request> {
    const all = await this.waitUnits(
      u => u.kind === 'request' && u.method === method,
      n,
      timeoutMs,
      `${n} ${method} at the backend`
    )
    return all[n - 1] as Request
  }

  async waitClosed (timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.closed, `backend connection ${this.id} closed`, timeoutMs)
  }
}

/** A deterministic pseudo-random source: `rnd(n)` is in 0 … n-1, the same sequence for the same seed. */
export function lcg (seed: number): (n: number) => number {
  return n => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
}

/**
 * A deterministic backend stream: `count` `$` frames on channels 0/1 whose payload sizes `size(i, rnd)`
 * chooses (patternBytes), with an RTSP 200 reply (CSeq cseqBase + i) right after each frame i in
 * `replyAfter`. Returns the bytes and the frames alone, for checking what a client received.
 */
export function frameStream (o: {
  count: number
  seed: number
  size: (i: number, rnd: (n: number) => number) => number
  replyAfter: number[]
  cseqBase: number
}): { bytes: Buffer, frames: Buffer[] } {
  const frames: Buffer[] = []
  const parts: Buffer[] = []
  const rnd = lcg(o.seed)
  for (let i = 0; i < o.count; i++) {
    const f = frame(i % 2, patternBytes(o.size(i, rnd), i + 1))
    frames.push(f)
    parts.push(f)
    if (o.replyAfter.includes(i)) parts.push(rtspResponse(200, 'OK', [['CSeq', String(o.cseqBase + i)]]))
  }
  return { bytes: Buffer.concat(parts), frames }
}

/**
 * Send `bytes` on `conn` in writes of pseudo-random sizes (every 5th write 1 to 8 bytes, the others
 * 1 byte to 70 KB; `seed` fixes the cuts). With `pauseEvery`, a 1 ms pause every that many writes;
 * without, every write is made before this returns its promise.
 */
export async function sendCut (
  conn: BackendConn,
  bytes: Buffer,
  o: { seed: number, pauseEvery?: number }
): Promise<void> {
  const rnd = lcg(o.seed)
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = i % 5 === 0 ? 1 + rnd(8) : 1 + rnd(70_000)
    conn.send(bytes.subarray(off, off + n))
    off += n
    if (o.pauseEvery !== undefined && i % o.pauseEvery === 0) await new Promise(resolve => setTimeout(resolve, 1))
  }
}

export type Script = (unit: RtspUnit, conn: BackendConn) => void

export class ScriptedBackend {
  readonly server: net.Server
  readonly conns: BackendConn[] = []
  script: Script
  port = 0
  readonly host = '127.0.0.1'

  private constructor (script: Script) {
    this.script = script
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, socket => this.#onConnection(socket))
  }

  static async start (script: Script = dssScript()): Promise<ScriptedBackend> {
    const b = new ScriptedBackend(script)
    await new Promise<void>((resolve, reject) => {
      b.server.once('error', reject)
      b.server.listen(0, '127.0.0.1', () => resolve())
    })
    b.port = (b.server.address() as net.AddressInfo).port
    return b
  }

  /** rtsp://127.0.0.1:PORT (for the gateway's backends list). */
  get url (): string { return `rtsp://${this.host}:${this.port}` }
  /** host:port as it appears in URLs. */
  get authority (): string { return `${this.host}:${this.port}` }

  #onConnection (socket: net.Socket): void {
    const conn = new BackendConn(this.conns.length, socket, this)
    this.conns.push(conn)
    socket.on('data', (chunk: Buffer) => {
      for (const u of conn.feed(chunk)) {
        try { this.script(u, conn) } catch (err) { process.emitWarning(`scripted backend: ${(err as Error).message}`) }
      }
    })
    socket.on('end', () => { conn.finAt = Date.now(); socket.end() })
    socket.on('error', () => {})
    socket.on('close', () => { conn.closedAt = Date.now() })
  }

  async waitConn (n = 1, timeoutMs = 3000): Promise<BackendConn> {
    return await waitFor(() => this.conns[n - 1], `backend connection #${n}`, timeoutMs)
  }

  get allClosed (): boolean { return this.conns.every(c => c.closed) }

  async close (): Promise<void> {
    for (const c of this.conns) c.socket.destroy()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }
}

export interface DssOptions {
  /** SDP a=control values as absolute URLs on the backend's own address (instead of trackID=N). */
  absoluteControl?: boolean
  /** First interleaved channel the server assigns (DSS picks its own: 0-1, 2-3, …). */
  interleavedBase?: number
  sessionId?: string
  /** Public header for OPTIONS (DSS lists no GET_PARAMETER). */
  public?: string
  /** Digest auth required for every request but OPTIONS. */
  digest?: { realm: string, nonce: string, user: string, password: string }
  /** Extra headers on the DESCRIBE reply (e.g. Content-Location). */
  describeHeaders?: (req: Request, conn: BackendConn) => Header[]
  /** Called for every request before the default handling; return true when handled. */
  before?: (req: Request, conn: BackendConn) => boolean
  /** Called for every non-request unit (responses from the client, `$` frames). */
  other?: (unit: RtspUnit, conn: BackendConn) => void
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

/** Parse `Digest k="v", k2=v2` into a map. */
export function parseDigest (value: string): Record<string, string> {
  const out: Record<string, string> = {}
  const text = value.replace(/^Digest\s+/i, '')
  const re = /(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? ''
  return out
}

/** A client's Authorization value for `method uri` (RFC 2617 without qop, as live555/DSS use). */
export function digestAuthorization (o: {
  user: string
  password: string
  realm: string
  nonce: string
  method: string
  uri: string
}): string {
  const ha1 = md5(`${o.user}:${o.realm}:${o.password}`)
  const ha2 = md5(`${o.method}:${o.uri}`)
  const response = md5(`${ha1}:${o.nonce}:${ha2}`)
  return `Digest username="${o.user}", realm="${o.realm}", nonce="${o.nonce}", uri="${o.uri}", response="${response}"`
}

/** The path of an rtsp:// URL ('' for '*'). */
function pathOf (uri: string): string {
  const m = /^rtsp:\/\/[^/]*(\/[^?]*)?/i.exec(uri)
  return m === null ? '' : (m[1] ?? '/')
}

/** DSS-like request handling (see the module comment). */
export function dssScript (o: DssOptions = {}): Script {
  return (unit, conn) => {
    if (unit.kind !== 'request') { o.other?.(unit, conn); return }
    const req = unit
    if (o.before?.(req, conn) === true) return
    const self = `rtsp://${conn.backend.authority}`
    const sessionId = o.sessionId ?? '7368154426419384412'
    const method = req.method
    if (o.digest !== undefined && method !== 'OPTIONS') {
      const auth = getHeader(req, 'Authorization')
      const d = o.digest
      let ok = false
      if (auth !== undefined) {
        const p = parseDigest(auth)
        const expected = md5(
          `${md5(`${d.user}:${d.realm}:${d.password}`)}:${d.nonce}:${md5(`${method}:${p.uri ?? ''}`)}`
        )
        ok = p.username === d.user && p.nonce === d.nonce && p.response === expected
      }
      if (!ok) {
        conn.state.challenges = (conn.state.challenges as number ?? 0) + 1
        conn.respond(req, 401, 'Unauthorized', [
          ['Server', 'DSS/6.0.3'],
          ['WWW-Authenticate', `Digest realm="${d.realm}", nonce="${d.nonce}"`]
        ])
        return
      }
    }
    const session = getHeader(req, 'Session')
    const granted = conn.state.session as string | undefined
    if (session !== undefined && session.split(';')[0]!.trim() !== granted) {
      conn.respond(req, 454, 'Session Not Found')
      return
    }
    switch (method) {
      case 'OPTIONS':
        conn.respond(req, 200, 'OK', [
          ['Server', 'DSS/6.0.3'],
          ['Public', o.public ?? 'DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, OPTIONS, ANNOUNCE, RECORD']
        ])
        return
      case 'DESCRIBE': {
        const path = pathOf(req.uri)
        const ctl = (t: string): string => o.absoluteControl === true ? `${self}${path}/${t}` : t
        const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n' +
          `a=control:${o.absoluteControl === true ? `${self}${path}/` : '*'}\r\n` +
          `m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:${ctl('trackID=1')}\r\n` +
          `m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/48000/2\r\na=control:${ctl('trackID=2')}\r\n`
        const base = req.uri.endsWith('/') ? req.uri : `${req.uri}/`
        conn.respond(
          req,
          200,
          'OK',
          [
            ['Server', 'DSS/6.0.3'],
            ['Content-Base', base],
            ...(o.describeHeaders?.(req, conn) ?? []),
            ['Content-Type', 'application/sdp']
          ],
          sdp
        )
        return
      }
      case 'SETUP': {
        const n = (conn.state.setups as number | undefined) ?? 0
        conn.state.setups = n + 1
        conn.state.session = sessionId
        const tracks = (conn.state.tracks as string[] | undefined) ?? []
        tracks.push(pathOf(req.uri))
        conn.state.tracks = tracks
        const ch = (o.interleavedBase ?? 0) + 2 * n
        const transport = getHeader(req, 'Transport') ?? ''
        conn.state.lastTransport = transport
        conn.respond(req, 200, 'OK', [
          ['Server', 'DSS/6.0.3'],
          ['Session', sessionId],
          ['Transport', `RTP/AVP/TCP;unicast;interleaved=${ch}-${ch + 1};ssrc=6B8B4567`]
        ])
        return
      }
      case 'PLAY': {
        const tracks = (conn.state.tracks as string[] | undefined) ?? []
        const info = tracks.map((p, i) => `url=${self}${p};seq=${1000 + i};rtptime=${90000 * (i + 1)}`).join(',')
        const range = getHeader(req, 'Range') ?? 'npt=0.00000-'
        conn.respond(req, 200, 'OK', [
          ['Server', 'DSS/6.0.3'],
          ['Session', sessionId],
          ['Range', range],
          ...(info === '' ? [] : [['RTP-Info', info] as Header])
        ])
        return
      }
      case 'PAUSE':
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        conn.respond(req, 200, 'OK', [['Server', 'DSS/6.0.3'], ['Session', sessionId]])
        return
      case 'TEARDOWN':
        conn.state.session = undefined
        conn.respond(req, 200, 'OK', [['Server', 'DSS/6.0.3'], ['Session', sessionId]])
        return
      default:
        conn.respond(req, 501, 'Not Implemented')
    }
  }
}

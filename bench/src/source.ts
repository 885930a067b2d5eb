/**
 * The bench's media source: a synthetic RTSP server that sends stamped RTP at a bitrate chosen by
 * the URL, over plain RTSP/TCP (what tunnelgate's relays speak to backends) AND over the
 * QuickTime tunnel it terminates itself on the same port (the "direct" baseline, and the backend
 * HAProxy and the raw relay forward to). One sender for every scenario, so the only difference
 * between scenarios is the middle box.
 *
 *   rtsp://HOST:PORT/b/<kbit/s>[/<RTP packet bytes>]       (default 2000 kbit/s, 1400 bytes)
 *
 * Each RTP packet carries the stamp header extension (see stamp.ts: monotonic ns at write time).
 * Packets are paced per session every `tickMs`; a session's packets due at its tick leave in one
 * write (as a Darwin-style server batches); the first packet leaves right after the PLAY reply.
 * Sessions are NOT phase locked: the tick is cut into `phases` slots (a ticker every
 * tickMs / phases ms) and each session is served in its own slot (sessions take the slots in turn
 * as they start), so independent streams reach a middle box spread over the tick, as real ones do,
 * instead of every session's packets in one burst per tick (`phases: 1` is that burst model).
 * Within a slot the sessions are served from a starting point that moves on by one every pass,
 * and each session's packets are stamped when its write is made (not when the slot began), so no
 * session is always first or always last: tunnels opened before others (the delay phase's direct
 * probes) see the same delays as the rest. A
 * session whose socket has more than `backlogBytes` queued drops what is due (live semantics) and
 * the receiver sees the sequence gap as loss.
 */
import net from 'node:net'
import {
  Base64StreamDecoder, buildTunnelGetReply, getHeader, makeResponse, parseHttpHead, RtspDemuxer, serializeMessage,
  type Header, type RtspRequest
} from 'tunnelgate/codec'
import { STAMP_EXT_BYTES, writeStamp } from './stamp.js'

export interface SourceOptions {
  port?: number
  host?: string
  tickMs?: number
  /** Slots per tick: sessions are served in their own slot (1 = all sessions at once, phase locked). */
  phases?: number
  backlogBytes?: number
  defaultKbps?: number
}

interface Session {
  id: string
  out: net.Socket
  kbps: number
  pkt: number
  playing: boolean
  startNs: bigint
  sent: number
  seq: number
  ssrc: number
  template: Buffer
  dropped: number
  /** Slot of the tick this session is served in (0 ≤ phase < phases). */
  phase: number
}

const RTP_FIXED = 12

export class BenchSource {
  readonly #server: net.Server
  readonly #opts: Required<SourceOptions>
  /** Playing sessions per slot, and where the next pass over each slot starts (moves on by one per pass). */
  readonly #playing: Session[][]
  readonly #start: number[]
  #slot = 0
  #nextPhase = 0
  readonly #gets = new Map<string, Conn>()
  readonly #waitingPosts = new Map<string, Array<{ sock: net.Socket, rest: Buffer }>>()
  #ticker: NodeJS.Timeout | null = null
  #nextId = 1
  packetsSent = 0
  packetsDropped = 0

  constructor (opts: SourceOptions = {}) {
    this.#opts = {
      port: 0, host: '127.0.0.1', tickMs: 10, phases: 1, backlogBytes: 1 << 20, defaultKbps: 2000, ...opts
    }
    this.#opts.phases = Math.max(1, Math.floor(this.#opts.phases))
    this.#playing = Array.from({ length: this.#opts.phases }, () => [])
    this.#start = new Array<number>(this.#opts.phases).fill(0)
    this.#server = net.createServer(s => this.#accept(s))
  }

  get port (): number { return (this.#server.address() as net.AddressInfo).port }

  async start (): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen({ port: this.#opts.port, host: this.#opts.host, backlog: 4096 }, resolve)
    })
    this.#ticker = setInterval(() => this.#tick(), this.#opts.tickMs / this.#opts.phases)
    return this.port
  }

  async close (): Promise<void> {
    if (this.#ticker !== null) clearInterval(this.#ticker)
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }

  #accept (sock: net.Socket): void {
    sock.setNoDelay(true)
    sock.on('error', () => {})
    let head: Buffer = Buffer.alloc(0)
    const first = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
      if (!/^(GET|POST) /.test(head.toString('latin1', 0, 5))) {
        if (head.length < 5 && /^(G|GE|GET|P|PO|POS|POST)$/.test(head.toString('latin1'))) return
        sock.off('data', first)
        const c = new Conn(this, sock)
        c.input(head)
        sock.on('data', d => c.input(d))
        sock.on('close', () => c.gone())
        return
      }
      const r = parseHttpHead(head)
      if (r.state === 'incomplete') return
      sock.off('data', first)
      if (r.state === 'error') { sock.destroy(); return }
      const cookie = getHeader(r.head, 'x-sessioncookie') ?? ''
      const rest = head.subarray(r.head.headLength)
      if (r.head.method === 'GET') {
        sock.write(buildTunnelGetReply({ serverName: 'bench-source' }))
        const c = new Conn(this, sock)
        this.#gets.set(cookie, c)
        sock.on('data', () => {}) // upstream RTCP (none from the bench client)
        sock.on('close', () => { this.#gets.delete(cookie); c.gone() })
        for (const p of this.#waitingPosts.get(cookie) ?? []) c.attachPost(p.sock, p.rest)
        this.#waitingPosts.delete(cookie)
      } else {
        const c = this.#gets.get(cookie)
        if (c !== undefined) { c.attachPost(sock, rest); return }
        const list = this.#waitingPosts.get(cookie) ?? []
        list.push({ sock, rest })
        this.#waitingPosts.set(cookie, list)
        sock.pause()
        sock.on('close', () => {
          const l = this.#waitingPosts.get(cookie)
          if (l !== undefined) { const i = l.findIndex(p => p.sock === sock); if (i >= 0) l.splice(i, 1) }
        })
      }
    }
    sock.on('data', first)
  }

  newSession (out: net.Socket, url: string): Session {
    const m = /\/b\/(\d+)(?:\/(\d+))?/.exec(url)
    const kbps = m !== null ? Number(m[1]) : this.#opts.defaultKbps
    const pkt = Math.max(RTP_FIXED + STAMP_EXT_BYTES + 4, Math.min(1460, m?.[2] !== undefined ? Number(m[2]) : 1400))
    const template = Buffer.alloc(4 + pkt, 0xa5)
    template[0] = 0x24
    template[1] = 0
    template.writeUInt16BE(pkt, 2)
    template[4] = 0x90 // V=2, X=1
    template[5] = 96
    const ssrc = (Math.random() * 0xffffffff) >>> 0
    template.writeUInt32BE(ssrc, 12)
    return {
      id: String(this.#nextId++ * 7919 + 100000),
      out,
      kbps,
      pkt,
      playing: false,
      startNs: 0n,
      sent: 0,
      seq: (Math.random() * 0xffff) >>> 0,
      ssrc,
      template,
      dropped: 0,
      phase: 0
    }
  }

  play (s: Session): void {
    if (s.playing) return
    s.playing = true
    s.startNs = process.hrtime.bigint()
    s.sent = 0
    s.phase = this.#nextPhase
    this.#nextPhase = (this.#nextPhase + 1) % this.#opts.phases
    this.#playing[s.phase]!.push(s)
    this.#send(s, 1, s.startNs)
  }

  stop (s: Session): void {
    if (!s.playing) return
    s.playing = false
    const slot = this.#playing[s.phase]!
    const i = slot.indexOf(s)
    if (i >= 0) slot.splice(i, 1)
  }

  #tick (): void {
    const now = process.hrtime.bigint()
    const k = this.#slot
    const slot = this.#playing[k]!
    this.#slot = (k + 1) % this.#opts.phases
    const len = slot.length
    if (len === 0) return
    const first = this.#start[k] = (this.#start[k]! + 1) % len
    let gone = false
    for (let j = 0; j < len; j++) {
      const s = slot[(first + j) % len]!
      if (s.out.destroyed) { gone = true; continue }
      const pps = (s.kbps * 1000) / ((s.pkt + 4) * 8)
      const due = 1 + Math.floor(Number(now - s.startNs) * pps / 1e9)
      const n = due - s.sent
      if (n > 0) this.#send(s, Math.min(n, 2000), process.hrtime.bigint())
    }
    if (gone) { for (const s of slot.filter(x => x.out.destroyed)) this.stop(s) }
  }

  #send (s: Session, n: number, now: bigint): void {
    const frame = s.template.length
    if (s.out.writableLength > this.#opts.backlogBytes) {
      s.sent += n; s.seq = (s.seq + n) & 0xffff; s.dropped += n; this.packetsDropped += n
      return
    }
    const buf = Buffer.allocUnsafe(frame * n)
    const ts = Number((now - s.startNs) / 11111n) >>> 0 // 90 kHz
    for (let i = 0; i < n; i++) {
      const o = i * frame
      s.template.copy(buf, o)
      buf.writeUInt16BE(s.seq, o + 6)
      buf.writeUInt32BE(ts, o + 8)
      writeStamp(buf, o + 4 + RTP_FIXED, now)
      s.seq = (s.seq + 1) & 0xffff
    }
    s.sent += n
    this.packetsSent += n
    s.out.write(buf)
  }
}

/** One RTSP client: plain (in = out = the socket) or tunnelled (out = GET, input from POSTs). */
class Conn {
  readonly #src: BenchSource
  readonly #out: net.Socket
  readonly #demux = new RtspDemuxer()
  #session: Session | null = null

  constructor (src: BenchSource, out: net.Socket) {
    this.#src = src
    this.#out = out
  }

  attachPost (sock: net.Socket, rest: Buffer): void {
    sock.setNoDelay(true)
    const dec = new Base64StreamDecoder()
    const feed = (b: Buffer): void => { const d = dec.push(b).data; if (d.length > 0) this.input(d) }
    sock.on('data', feed)
    sock.resume()
    if (rest.length > 0) feed(rest)
  }

  gone (): void { if (this.#session !== null) this.#src.stop(this.#session) }

  input (chunk: Buffer): void {
    for (const u of this.#demux.push(chunk)) {
      if (u.kind === 'request') this.#request(u)
      else if (u.kind === 'error') { this.#out.destroy(); return }
    }
  }

  #reply (req: RtspRequest, status: number, extra: Header[] = [], body?: Buffer): void {
    this.#out.write(serializeMessage(makeResponse(status, getHeader(req, 'CSeq'), extra, body)))
  }

  #request (req: RtspRequest): void {
    const s = this.#session
    const sess: Header[] = s === null ? [] : [['Session', `${s.id};timeout=60`]]
    switch (req.method) {
      case 'OPTIONS': return this.#reply(
        req, 200, [['Public', 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER']]
      )
      case 'DESCRIBE': {
        const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=tunnelgate bench\r\nc=IN IP4 0.0.0.0\r\nt=0 ' +
          '0\r\na=control:*\r\n' +
          'm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track0\r\n'
        const base = req.uri.endsWith('/') ? req.uri : req.uri + '/'
        return this.#reply(req, 200, [['Content-Base', base], ['Content-Type', 'application/sdp']], Buffer.from(sdp))
      }
      case 'SETUP': {
        if (this.#session === null) this.#session = this.#src.newSession(this.#out, req.uri)
        return this.#reply(
          req, 200,
          [['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1'], ['Session', `${this.#session.id};timeout=60`]]
        )
      }
      case 'PLAY': {
        if (s === null) return this.#reply(req, 455)
        const base = req.uri.replace(/\/track0$/, '')
        this.#reply(
          req, 200, [...sess, ['Range', 'npt=0.000-'], ['RTP-Info', `url=${base}/track0;seq=${s.seq};rtptime=0`]]
        )
        this.#src.play(s)
        return
      }
      case 'PAUSE':
        if (s !== null) this.#src.stop(s)
        return this.#reply(req, 200, sess)
      case 'TEARDOWN':
        if (s !== null) this.#src.stop(s)
        this.#session = null
        return this.#reply(req, 200, sess)
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        return this.#reply(req, 200, sess)
      default:
        return this.#reply(req, 501)
    }
  }
}

/**
 * One RTSP/TCP connection to the origin: parses requests with the shared demuxer, answers
 * them strictly in arrival order (pipelining), owns the sessions created on it.
 *
 * Methods: OPTIONS, DESCRIBE, SETUP, PLAY (Range seek, RTP-Info), PAUSE, TEARDOWN,
 * GET_PARAMETER and SET_PARAMETER (keepalive). Closing the connection tears its sessions
 * down. Errors: unknown stream 404, bad Range 457, unsupported transport 461, malformed 400,
 * unknown session 454, wrong state 455, other methods 501, other versions 505.
 */
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { RtspDemuxer } from '../tunnel/codec/demux.js'
import {
  getHeader, makeResponse, serializeMessage, type Header, type RtspRequest, type RtspResponse
} from '../tunnel/codec/rtsp-message.js'
import type { LiveChannel, LiveViewer } from './live-channel.js'
import type { MediaCatalog } from './media-catalog.js'
import type { MediaSource } from './media-source.js'
import type { OriginMetrics } from './metrics.js'
import type { OriginLogger } from './options.js'
import { ViewerOutput, type UdpPair } from './output.js'
import { RtpStream } from './rtp-stream.js'
import { parseNptRange, parseTarget, type Target } from './rtsp-url.js'
import { buildSdp } from '../tunnel/codec/sdp/write.js'
import { chooseTransport, formatTransport, type TrackTransport } from '../tunnel/codec/transport.js'
import { VodPlayer, type RtpInfoEntry } from './vod-player.js'

export const PUBLIC_METHODS = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER'
const SERVER = 'tunnelgate-origin/0.1'
const EXTRA_REASONS: Record<number, string> = { 406: 'Not Acceptable', 451: 'Parameter Not Understood' }

export interface ServerContext {
  catalog: MediaCatalog
  metrics: OriginMetrics
  udp: UdpPair | undefined
  log: OriginLogger
  sessionTimeoutSec: number
  stamp: boolean
  maxBacklog: number
  cname: string
  liveChannel (src: MediaSource): LiveChannel
  /** Route RTCP from a UDP client address ("ip:port") to its session's activity timer. */
  udpClients: Map<string, OriginSession>
}

export interface OriginSession {
  id: string
  src: MediaSource
  live: boolean
  out: ViewerOutput
  streams: RtpStream[]
  state: 'ready' | 'playing' | 'paused'
  player?: VodPlayer
  viewer?: LiveViewer
  channel?: LiveChannel
  /** Resolves a live PLAY still waiting for its keyframe. */
  pendingPlay?: () => void
  lastSeen: number
  udpKeys: string[]
}

class RtspError extends Error {
  constructor (readonly status: number, msg?: string, readonly extra: Header[] = []) { super(msg ?? String(status)) }
}

export class RtspConnection {
  readonly socket: Socket
  readonly #ctx: ServerContext
  readonly #demux = new RtspDemuxer()
  readonly #sessions = new Map<string, OriginSession>()
  readonly #channels = new Set<number>()
  #chain: Promise<void> = Promise.resolve()
  #closed = false

  constructor (socket: Socket, ctx: ServerContext) {
    this.socket = socket
    this.#ctx = ctx
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30000)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', () => {})
    socket.on('close', () => this.#onClose())
  }

  /** End sessions idle longer than the timeout; a timed-out connection is closed. */
  checkTimeouts (nowMs: number): void {
    const limit = this.#ctx.sessionTimeoutSec * 1000
    for (const s of this.#sessions.values()) {
      if (nowMs - s.lastSeen <= limit) continue
      this.#ctx.log.info({ session: s.id, stream: s.src.name }, 'origin: session timed out')
      this.#destroySession(s)
      if (this.#sessions.size === 0) this.socket.destroy()
    }
  }

  close (): void { this.socket.destroy() }

  #touch (): void {
    const now = Date.now()
    for (const s of this.#sessions.values()) s.lastSeen = now
  }

  #onData (chunk: Buffer): void {
    for (const u of this.#demux.push(chunk)) {
      if (u.kind === 'frame') { this.#touch(); continue } // RTCP receiver reports: activity only
      if (u.kind === 'error') {
        this.#enqueue(async () => {
          this.#send('INVALID', makeResponse(400, u.cseq, [['Server', SERVER]]))
          if (u.fatal) this.socket.end()
        })
        continue
      }
      if (u.kind === 'response') continue // replies to nothing we sent
      const req: RtspRequest = u
      this.#touch()
      this.#enqueue(() => this.#handle(req))
    }
  }

  #enqueue (fn: () => Promise<void>): void {
    this.#chain = this.#chain.then(fn).catch((err: unknown) => {
      this.#ctx.log.error({ err: err instanceof Error ? err.message : String(err) }, 'origin: request handler failed')
    })
  }

  #send (method: string, res: RtspResponse): void {
    if (res.reason === 'Unknown') res.reason = EXTRA_REASONS[res.status] ?? 'Unknown'
    this.#ctx.metrics.requests.inc({ method: method.slice(0, 32), status: String(res.status) })
    if (this.#closed) return
    this.socket.write(serializeMessage(res))
  }

  async #handle (req: RtspRequest): Promise<void> {
    if (this.#closed) return
    const cseq = getHeader(req, 'cseq')
    const method = /^[A-Z_]+$/.test(req.method) ? req.method : 'OTHER'
    const sessionHeader = getHeader(req, 'session')
    const base: Header[] = [['Server', SERVER], ['Date', new Date().toUTCString()]]
    try {
      if (cseq === undefined || !/^\d+$/.test(cseq.trim())) throw new RtspError(400, 'missing CSeq')
      if (req.version !== 'RTSP/1.0') throw new RtspError(505)
      let extra: Header[] = []
      let body: Buffer | undefined
      switch (req.method) {
        case 'OPTIONS':
          extra = [['Public', PUBLIC_METHODS]]
          break
        case 'DESCRIBE':
          ({ extra, body } = this.#describe(req))
          break
        case 'SETUP':
          extra = this.#setup(req, sessionHeader)
          break
        case 'PLAY': {
          // Live: the reply is written at the viewer's first keyframe, just before its packets.
          const r = this.#play(req, sessionHeader, (h) => this.#send(method, makeResponse(200, cseq, [...base, ...h])))
          if (r instanceof Promise) { await r; return }
          extra = r
          break
        }
        case 'PAUSE':
          extra = this.#pause(req, sessionHeader)
          break
        case 'TEARDOWN': {
          const s = this.#session(sessionHeader)
          this.#destroySession(s)
          extra = [['Session', s.id]]
          break
        }
        case 'GET_PARAMETER':
        case 'SET_PARAMETER':
          ({ extra, body } = this.#parameters(req, sessionHeader))
          break
        default:
          throw new RtspError(501, undefined, [['Public', PUBLIC_METHODS]])
      }
      this.#send(method, makeResponse(200, cseq, [...base, ...extra], body))
    } catch (err) {
      if (!(err instanceof RtspError)) throw err
      const extra: Header[] = [...base, ...err.extra]
      if (sessionHeader !== undefined && err.status !== 454) {
        extra.push(['Session', sessionHeader.split(';')[0]!.trim()])
      }
      this.#send(method, makeResponse(err.status, cseq?.trim(), extra))
    }
  }

  #target (req: RtspRequest): { t: Target, src: MediaSource } {
    const t = parseTarget(req.uri)
    if (t === undefined) throw new RtspError(400, 'bad request URL')
    const src = this.#ctx.catalog.get(t.name)
    if (src === undefined) throw new RtspError(404)
    return { t, src }
  }

  #session (header: string | undefined): OriginSession {
    const id = header?.split(';')[0]?.trim()
    const s = id === undefined ? undefined : this.#sessions.get(id)
    if (s === undefined) throw new RtspError(454)
    return s
  }

  #describe (req: RtspRequest): { extra: Header[], body: Buffer } {
    const { t, src } = this.#target(req)
    if (t.track !== undefined) throw new RtspError(404)
    const accept = getHeader(req, 'accept')
    if (accept !== undefined && !/application\/sdp|\*\/\*|application\/\*/i.test(accept)) throw new RtspError(406)
    const sdp = buildSdp({
      name: src.name,
      origin: this.socket.localAddress?.replace(/^::ffff:/, '') ?? '0.0.0.0',
      sessionId: String(Math.floor(Date.now() / 1000)),
      ...(t.live ? {} : { durationSec: src.durationSec }),
      tracks: src.sdpTracks()
    })
    return {
      extra: [['Content-Base', `${t.base}/`], ['Content-Type', 'application/sdp'], ['Cache-Control', 'no-cache']],
      body: Buffer.from(sdp)
    }
  }

  #setup (req: RtspRequest, sessionHeader: string | undefined): Header[] {
    const { t, src } = this.#target(req)
    let track = t.track
    if (track === undefined && src.tracks.length === 1) track = 1
    if (track === undefined || track < 1 || track > src.tracks.length) throw new RtspError(404)
    const ti = track - 1
    const transportHeader = getHeader(req, 'transport')
    const offer = transportHeader === undefined ? undefined : chooseTransport(transportHeader)
    if (offer === undefined) throw new RtspError(461)
    if (offer.lower === 'udp' && this.#ctx.udp === undefined) throw new RtspError(461)
    let s: OriginSession
    if (sessionHeader !== undefined) {
      s = this.#session(sessionHeader)
      if (s.src !== src || s.live !== t.live) throw new RtspError(459, 'SETUP of another stream in this session')
      if (s.state === 'playing' && !s.live) throw new RtspError(455)
    } else { s = this.#newSession(src, t.live) }
    // Replace an earlier transport of the same track.
    const old = s.out.tracks.get(ti)
    if (old?.kind === 'tcp') { this.#channels.delete(old.rtpChannel); this.#channels.delete(old.rtcpChannel) }
    let tt: TrackTransport
    if (offer.lower === 'tcp') {
      let ch = offer.interleaved
      if (ch === undefined) {
        let c = 0
        while (this.#channels.has(c) || this.#channels.has(c + 1)) c += 2
        ch = [c, c + 1]
      }
      this.#channels.add(ch[0]).add(ch[1])
      tt = { kind: 'tcp', rtpChannel: ch[0], rtcpChannel: ch[1] }
    } else {
      const host = this.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1'
      tt = { kind: 'udp', host, rtpPort: offer.clientPort![0], rtcpPort: offer.clientPort![1] }
      for (const key of [`${host}:${tt.rtpPort}`, `${host}:${tt.rtcpPort}`]) {
        this.#ctx.udpClients.set(key, s)
        s.udpKeys.push(key)
      }
    }
    s.out.tracks.set(ti, tt)
    let ssrc = s.streams[ti]?.ssrc ?? 0
    if (s.live) {
      s.channel!.prepare()
      ssrc = s.channel!.ssrc(ti)
    }
    return [
      ['Session', `${s.id};timeout=${this.#ctx.sessionTimeoutSec}`],
      ['Transport', formatTransport(tt, ssrc, tt.kind === 'udp' ? this.#ctx.udp!.ports : undefined)],
      ['Cache-Control', 'no-cache']
    ]
  }

  #newSession (src: MediaSource, live: boolean): OriginSession {
    let id: string
    do id = BigInt('0x' + randomBytes(8).toString('hex')).toString(10)
    while (this.#sessions.has(id))
    const out = new ViewerOutput(this.socket, this.#ctx.udp, this.#ctx.metrics)
    const s: OriginSession = { id, src, live, out, streams: [], state: 'ready', lastSeen: Date.now(), udpKeys: [] }
    if (live) { s.channel = this.#ctx.liveChannel(src) } else {
      s.streams = src.tracks.map((tr) => new RtpStream(tr.payloadType, tr.clockRate))
      s.player = new VodPlayer(src, out, s.streams, {
        metrics: this.#ctx.metrics, maxBacklog: this.#ctx.maxBacklog, stamp: this.#ctx.stamp, cname: this.#ctx.cname
      })
    }
    this.#sessions.set(id, s)
    this.#ctx.metrics.sessions.inc()
    this.#ctx.log.info(
      { session: id, stream: src.name, live, remote: this.socket.remoteAddress }, 'origin: session created'
    )
    return s
  }

  #rtpInfo (s: OriginSession, base: string, info: RtpInfoEntry[]): string {
    return info.map(
      (e) => `url=${base}/${s.src.tracks[e.track]!.control};seq=${e.seq};rtptime=${e.rtptime >>> 0}`
    ).join(',')
  }

  #play (
    req: RtspRequest, sessionHeader: string | undefined, replyNow: (h: Header[]) => void
  ): Header[] | Promise<void> {
    const s = this.#session(sessionHeader)
    const { t, src } = this.#target(req)
    if (src !== s.src) throw new RtspError(454)
    if (s.out.tracks.size === 0) throw new RtspError(455)
    const rangeHeader = getHeader(req, 'range')
    const range = rangeHeader === undefined ? undefined : parseNptRange(rangeHeader)
    if (rangeHeader !== undefined && range === undefined) throw new RtspError(457)
    const sessionOut: Header = ['Session', `${s.id};timeout=${this.#ctx.sessionTimeoutSec}`]
    if (s.live) {
      if (s.state === 'playing') return [sessionOut, ['Range', 'npt=now-']]
      return new Promise<void>((resolve) => {
        const viewer: LiveViewer = {
          out: s.out,
          active: false,
          onStart: (info) => {
            s.pendingPlay = undefined
            s.state = 'playing'
            replyNow([sessionOut, ['Range', 'npt=now-'], ['RTP-Info', this.#rtpInfo(s, t.base, info)]])
            resolve()
          }
        }
        s.viewer = viewer
        s.pendingPlay = () => { s.pendingPlay = undefined; resolve() }
        s.channel!.add(viewer)
      })
    }
    const player = s.player!
    const dur = src.durationSec.toFixed(3)
    let start: number | undefined
    if (range?.start !== undefined) {
      if (range.start > src.durationSec) {
        throw new RtspError(457, 'Range start past the end', [['Range', `npt=0.000-${dur}`]])
      }
      start = src.seekPoint(range.start)
      if (start === undefined) throw new RtspError(457)
    } else if (s.state === 'playing') {
      // A PLAY without Range while playing is a keepalive ("ping"): no change.
      return [sessionOut, ['Range', `npt=${player.position().toFixed(3)}-${dur}`]]
    } else if (s.state === 'ready') { start = 0 }
    const r = player.play(start)
    s.state = 'playing'
    return [
      sessionOut, ['Range', `npt=${r.start.toFixed(3)}-${dur}`], ['RTP-Info', this.#rtpInfo(s, t.base, r.rtpInfo)]
    ]
  }

  #pause (req: RtspRequest, sessionHeader: string | undefined): Header[] {
    const s = this.#session(sessionHeader)
    this.#target(req)
    if (s.live) {
      if (s.viewer !== undefined) s.channel!.remove(s.viewer)
      s.pendingPlay?.()
      s.viewer = undefined
    } else { s.player!.pause() }
    if (s.state === 'playing') s.state = 'paused'
    const out: Header[] = [['Session', `${s.id};timeout=${this.#ctx.sessionTimeoutSec}`]]
    if (!s.live) out.push(['Range', `npt=${s.player!.position().toFixed(3)}-${s.src.durationSec.toFixed(3)}`])
    return out
  }

  #parameters (req: RtspRequest, sessionHeader: string | undefined): { extra: Header[], body?: Buffer } {
    const s = sessionHeader === undefined ? undefined : this.#session(sessionHeader)
    const extra: Header[] = s === undefined ? [] : [['Session', `${s.id};timeout=${this.#ctx.sessionTimeoutSec}`]]
    const names = req.body.toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '')
    if (names.length === 0) return { extra }
    if (req.method === 'SET_PARAMETER') throw new RtspError(451, undefined, [['Content-Type', 'text/parameters']])
    const lines: string[] = []
    for (const n of names) {
      const key = n.replace(/:.*$/, '').trim().toLowerCase()
      if (key === 'position' && s !== undefined) {
        lines.push(`position: ${s.live ? 'now' : s.player!.position().toFixed(3)}`)
      } else if (key === 'session_timeout') lines.push(`session_timeout: ${this.#ctx.sessionTimeoutSec}`)
      else if (key === 'streams') lines.push(`streams: ${this.#ctx.catalog.names().join(',')}`)
      else throw new RtspError(451, `parameter ${key}`, [['Content-Type', 'text/parameters']])
    }
    return { extra: [...extra, ['Content-Type', 'text/parameters']], body: Buffer.from(lines.join('\r\n') + '\r\n') }
  }

  #destroySession (s: OriginSession): void {
    if (!this.#sessions.delete(s.id)) return
    s.player?.stop()
    if (s.viewer !== undefined) s.channel?.remove(s.viewer)
    s.pendingPlay?.()
    for (const k of s.udpKeys) if (this.#ctx.udpClients.get(k) === s) this.#ctx.udpClients.delete(k)
    for (const t of s.out.tracks.values()) {
      if (t.kind === 'tcp') { this.#channels.delete(t.rtpChannel); this.#channels.delete(t.rtcpChannel) }
    }
    this.#ctx.metrics.sessions.dec()
    this.#ctx.log.info({ session: s.id, stream: s.src.name }, 'origin: session closed')
  }

  #onClose (): void {
    if (this.#closed) return
    this.#closed = true
    for (const s of [...this.#sessions.values()]) this.#destroySession(s)
  }
}

/**
 * The shared backend session of a live path: one RTSP/TCP connection to one backend, driven by
 * the relay itself (not by a client): OPTIONS, DESCRIBE, SETUP of every track (TCP interleaved,
 * channels 2i/2i+1 asked, the backend's choice read from the reply), PLAY, then keepalives
 * (GET_PARAMETER when the backend's Public lists it, else OPTIONS — Darwin answers
 * GET_PARAMETER with 500 and closes) every half session timeout. RTP/RTCP frames are handed to
 * the owner per socket read; every failure (connect error, close, unanswered request, no RTP
 * for live.stallTimeoutMs) ends in exactly one `lost` or `refused` callback.
 *
 * Server-originated requests (OPTIONS/GET_PARAMETER pings) are answered 200; others 501.
 */
import net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { BackendPool, BackendState } from '../backends/pool.js'
import { RtspDemuxer } from '../tunnel/codec/demux.js'
import type { InterleavedFrame } from '../tunnel/codec/interleaved.js'
import {
  getHeader, makeResponse, serializeMessage, type Header, type RtspResponse
} from '../tunnel/codec/rtsp-message.js'
import { formatInterleavedTransport, parseInterleaved, parseSessionHeader } from '../tunnel/codec/transport.js'
import { parseSdp, resolveControl, type SdpInfo } from '../tunnel/codec/sdp/parse.js'
import { contained, reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import type { GatewayMetrics } from '../core/metrics.js'

export interface UpstreamHandlers {
  /** The SDP arrived (DESCRIBE 200). 'stop' ends the session here (auto-detected VOD). */
  described (sdp: SdpInfo, body: Buffer, backend: BackendState): 'continue' | 'stop'
  /** PLAY answered 200 (its Range header given). 'stop' tears the session down. */
  playing (range: string | undefined): 'continue' | 'stop'
  /** The interleaved frames of one socket read, with the track each channel carries. */
  frames (frames: InterleavedFrame[], channels: ReadonlyMap<number, { track: number, rtcp: boolean }>): void
  /** The backend answered with an error status (or an SDP without tracks). */
  refused (status: number, method: string): void
  /** The session is gone (connect failure, close, timeout, stall). */
  lost (reason: string, connected: boolean): void
}

export interface UpstreamOptions {
  config: Config
  pool: BackendPool
  logger: Logger
  /** For contained faults (a throw in this session's handlers loses it; the channel reconnects). */
  metrics?: GatewayMetrics
  backend: BackendState
  /** rtsp://backend-authority/backend/path of the live stream. */
  url: string
}

const USER_AGENT = 'tunnelgate-live'

export class Upstream implements FaultOwner {
  readonly backend: BackendState
  readonly url: string
  readonly #o: UpstreamOptions
  readonly #h: UpstreamHandlers
  readonly #demux: RtspDemuxer
  #socket: net.Socket | null = null
  #cseq = 0
  readonly #pending = new Map<string, { resolve: (r: RtspResponse) => void, timer: NodeJS.Timeout, method: string }>()
  readonly #channels = new Map<number, { track: number, rtcp: boolean }>()
  #session: string | null = null
  #timeoutSec = 60
  #public = ''
  #aggregate = ''
  #playing = false
  #connected = false
  #done = false
  #acquired = false
  #keepalive: NodeJS.Timeout | null = null
  #stallCheck: NodeJS.Timeout | null = null
  #lastFrameAt = 0
  #connectTimer: NodeJS.Timeout | null = null

  constructor (o: UpstreamOptions, h: UpstreamHandlers) {
    this.#o = o
    this.#h = h
    this.backend = o.backend
    this.url = o.url
    const l = o.config.limits
    this.#demux = new RtspDemuxer({
      maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes
    })
  }

  get faultTag (): string { return this.url }

  fault (err: unknown, where: EntryPoint): void {
    if (this.#o.metrics !== undefined) reportFault(this.#o.metrics, this.#o.logger, where, err, { live: this.url })
    try { this.#lose(`internal fault at ${where}`) } catch { this.#socket?.destroy() }
  }

  get playing (): boolean { return this.#playing }
  get done (): boolean { return this.#done }

  start (): void {
    const b = this.backend
    this.#o.pool.acquire(b.config.name)
    this.#acquired = true
    const socket = net.connect({ host: b.host, port: b.port, noDelay: true })
    this.#socket = socket
    socket.setKeepAlive(true, 30_000)
    this.#connectTimer = setTimeout(
      contained(this, 'live-upstream-timer', () => socket.destroy(new Error('connect timeout'))),
      this.#o.config.backend.connectTimeoutMs
    )
    socket.once('connect', contained(this, 'live-upstream-connect', () => {
      clearTimeout(this.#connectTimer!)
      this.#connected = true
      this.#o.pool.markUp(b.config.name)
      this.#run().catch((err: unknown) => this.#lose(`setup failed: ${(err as Error).message}`))
    }))
    socket.on('data', contained(this, 'live-upstream-read', (chunk: Buffer) => this.#data(chunk)))
    socket.on('error', contained(this, 'live-upstream-close', (err: Error) => {
      if (!this.#connected) {
        clearTimeout(this.#connectTimer!)
        this.#o.pool.markFailed(b.config.name)
      }
      this.#lose(`${this.#connected ? 'socket error' : 'connect failed'}: ${err.message}`)
    }))
    socket.on('close', contained(this, 'live-upstream-close', () => this.#lose('backend closed the connection')))
  }

  async #run (): Promise<void> {
    const options = await this.#request('OPTIONS', this.url)
    if (this.#done) return
    this.#public = getHeader(options, 'Public') ?? ''
    const d = await this.#request('DESCRIBE', this.url, [['Accept', 'application/sdp']])
    if (this.#done) return
    if (d.status !== 200) { this.#refuse(d.status, 'DESCRIBE'); return }
    const sdp = parseSdp(d.body.toString('latin1'))
    if (sdp.tracks.length === 0) { this.#refuse(502, 'DESCRIBE'); return }
    let base = getHeader(d, 'Content-Base') ?? getHeader(d, 'Content-Location') ?? this.url
    if (!base.endsWith('/')) base += '/'
    if (this.#h.described(sdp, d.body, this.backend) === 'stop') { this.close(false); return }
    for (const t of sdp.tracks) {
      const headers: Header[] = [['Transport', formatInterleavedTransport([2 * t.index, 2 * t.index + 1])]]
      if (this.#session !== null) headers.push(['Session', this.#session])
      const r = await this.#request('SETUP', resolveControl(base, t.control), headers)
      if (this.#done) return
      if (r.status !== 200) { this.#refuse(r.status, 'SETUP'); return }
      const sess = getHeader(r, 'Session')
      if (sess !== undefined && this.#session === null) {
        const p = parseSessionHeader(sess)
        this.#session = p.id
        if (p.timeout !== undefined && p.timeout > 0) this.#timeoutSec = p.timeout
      }
      const ch = parseInterleaved(getHeader(r, 'Transport') ?? '') ?? [2 * t.index, 2 * t.index + 1]
      this.#channels.set(ch[0], { track: t.index, rtcp: false })
      if (ch[1] !== ch[0]) this.#channels.set(ch[1], { track: t.index, rtcp: true })
    }
    this.#aggregate = resolveControl(base, sdp.sessionControl)
    this.#lastFrameAt = Date.now()
    this.#armStall()
    const play = await this.#request(
      'PLAY', this.#aggregate, this.#session === null ? [] : [['Session', this.#session]]
    )
    if (this.#done) return
    if (play.status !== 200) { this.#refuse(play.status, 'PLAY'); return }
    this.#playing = true
    if (this.#h.playing(getHeader(play, 'Range')) === 'stop') { this.close(true); return }
    this.#armKeepalive()
  }

  #armKeepalive (): void {
    const everyMs = Math.max(1000, (this.#timeoutSec * 1000) / 2)
    const method = /\bGET_PARAMETER\b/i.test(this.#public) ? 'GET_PARAMETER' : 'OPTIONS'
    this.#keepalive = setInterval(contained(this, 'live-upstream-timer', () => {
      if (this.#done) return
      this.#request(
        method, method === 'OPTIONS' ? this.url : this.#aggregate,
        this.#session === null ? [] : [['Session', this.#session]]
      )
        .then(r => { if (r.status === 454) this.#lose('backend forgot the session (454 to keepalive)') })
        .catch(() => {})
    }), everyMs)
    this.#keepalive.unref()
  }

  /** No RTP for live.stallTimeoutMs once PLAY was sent = lost (a frozen backend, a cut path). */
  #armStall (): void {
    const stallMs = this.#o.config.live.stallTimeoutMs
    this.#stallCheck = setInterval(contained(this, 'live-upstream-timer', () => {
      if (this.#done) return
      const quiet = Date.now() - this.#lastFrameAt
      // Before the PLAY reply the request timeout applies (the origin holds it until a keyframe).
      if (this.#playing && quiet >= stallMs) this.#lose(`no RTP for ${quiet} ms`)
    }), Math.max(50, Math.floor(stallMs / 4)))
    this.#stallCheck.unref()
  }

  #request (method: string, url: string, headers: Header[] = []): Promise<RtspResponse> {
    const cseq = String(++this.#cseq)
    const msg = {
      kind: 'request' as const,
      method,
      uri: url,
      version: 'RTSP/1.0',
      headers: [['CSeq', cseq], ['User-Agent', USER_AGENT], ...headers] as Header[],
      body: Buffer.alloc(0)
    }
    return new Promise(resolve => {
      const timer = setTimeout(contained(this, 'live-upstream-timer', () => {
        this.#pending.delete(cseq)
        this.#lose(`no reply to ${method} within ${this.#o.config.backend.replyTimeoutMs} ms`)
      }), this.#o.config.backend.replyTimeoutMs)
      timer.unref()
      this.#pending.set(cseq, { resolve, timer, method })
      this.#socket?.write(serializeMessage(msg))
    })
  }

  #data (chunk: Buffer): void {
    if (this.#done) return
    const units = this.#demux.push(chunk)
    let frames: InterleavedFrame[] | null = null
    for (const u of units) {
      if (u.kind === 'frame') { (frames ??= []).push(u); continue }
      if (frames !== null) { this.#deliver(frames); frames = null }
      if (this.#done) return
      if (u.kind === 'response') {
        const key = getHeader(u, 'CSeq') ?? ''
        const p = this.#pending.get(key)
        if (p === undefined) continue
        this.#pending.delete(key)
        clearTimeout(p.timer)
        p.resolve(u)
      } else if (u.kind === 'request') {
        const ok = u.method === 'OPTIONS' || u.method === 'GET_PARAMETER' || u.method === 'SET_PARAMETER'
        this.#socket?.write(serializeMessage(makeResponse(ok ? 200 : 501, getHeader(u, 'CSeq'))))
      } else {
        this.#lose(`backend sent bytes that are not RTSP: ${u.reason}`)
        return
      }
    }
    if (frames !== null) this.#deliver(frames)
  }

  #deliver (frames: InterleavedFrame[]): void {
    this.#lastFrameAt = Date.now()
    this.#h.frames(frames, this.#channels)
  }

  #refuse (status: number, method: string): void {
    if (this.#done) return
    this.close(method !== 'DESCRIBE')
    this.#h.refused(status, method)
  }

  #lose (reason: string): void {
    if (this.#done) return
    const connected = this.#connected
    this.close(false)
    this.#h.lost(reason, connected)
  }

  /** End the session (TEARDOWN first when `teardown` and a session exists). Idempotent; no callback. */
  close (teardown: boolean): void {
    if (this.#done) return
    this.#done = true
    if (this.#keepalive !== null) clearInterval(this.#keepalive)
    if (this.#stallCheck !== null) clearInterval(this.#stallCheck)
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer)
    for (const p of this.#pending.values()) clearTimeout(p.timer)
    this.#pending.clear()
    if (this.#acquired) { this.#acquired = false; this.#o.pool.release(this.backend.config.name) }
    const s = this.#socket
    if (s === null) return
    s.removeAllListeners('data')
    s.on('error', () => {})
    if (teardown && this.#session !== null && !s.destroyed) {
      s.write(
        serializeMessage({
          kind: 'request',
          method: 'TEARDOWN',
          uri: this.#aggregate || this.url,
          version: 'RTSP/1.0',
          headers: [['CSeq', String(++this.#cseq)], ['Session', this.#session], ['User-Agent', USER_AGENT]],
          body: Buffer.alloc(0)
        })
      )
      s.once('data', () => s.destroy())
      s.end()
      setTimeout(() => s.destroy(), this.#o.config.backend.teardownGraceMs).unref()
    } else { s.destroy() }
  }
}

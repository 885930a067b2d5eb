/**
 * One client of a live path (a LiveViewer): the relay answers its RTSP itself, on behalf of the
 * shared backend session (docs/live-fanout.md):
 *
 *   OPTIONS                 200 + Public
 *   DESCRIBE                the path's cached SDP, absolute URLs mapped to the client's authority,
 *                           Content-Base = request URL + "/" (held until the first SDP arrives)
 *   SETUP                   per track, TCP interleaved only (else 461): the client's channel numbers
 *                           (or the next free pair), the relay's SSRC; one Session per viewer
 *   PLAY                    answered when the viewer's first packets are known: RTP-Info carries the
 *                           seq/rtptime of exactly the first packet of each track it gets (the GOP
 *                           cache's keyframe); Range: npt=now-. PLAY while playing = keepalive.
 *   PAUSE, TEARDOWN         stop its packets (TEARDOWN also ends its Session)
 *   GET/SET_PARAMETER       200 (keepalive)
 *   ANNOUNCE, RECORD, ...   405 + Allow
 *
 * Replies leave in request order. Requests for another path of the same tunnel get 404.
 * RTCP from the client only counts as activity (the backend session is shared).
 */
import { contained } from '../core/containment.js'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { ResolvedRoute } from '../backends/routes.js'
import { pathOfUrl } from '../backends/routes.js'
import type { RtspUnit } from '../tunnel/codec/demux.js'
import {
  getHeader, makeResponse, serializeMessage, type Header, type RtspRequest
} from '../tunnel/codec/rtsp-message.js'
import {
  filterTcpTransports, formatInterleavedTransport, parseInterleaved, parseSessionHeader, parseTransport
} from '../tunnel/codec/transport.js'
import type { LiveAttachContext, LiveDelegate } from '../session/live-seam.js'
import {
  newPlayState, type Channels, type ChannelViewer, type LiveChannel, type PlayState, type RtpInfoEntry
} from './fanout.js'
import { resolveControl } from '../tunnel/codec/sdp/parse.js'

export const LIVE_PUBLIC = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER'
/** Session timeout announced to live viewers (seconds); their keepalives only need to keep the tunnel open. */
export const LIVE_SESSION_TIMEOUT_SEC = 60

/** What a viewer needs from the registry. */
export interface ViewerHost {
  metrics: GatewayMetrics
  logger: Logger
  pendingInputBytes: number
  replyTimeoutMs: number
  /** The live channel for a path (created on first use), or why there is none. */
  channelFor (
    path: string, route: ResolvedRoute, auto: boolean
  ): LiveChannel | { status: number, code: ErrorCode, reason: string }
}

interface Slot {
  cseq: string | undefined
  out?: Buffer
  /** A request waiting for the channel (SDP, or the start of play). */
  req?: RtspRequest
  play?: boolean
  timer?: NodeJS.Timeout
}

export class LiveViewer implements LiveDelegate, ChannelViewer {
  readonly play: PlayState = newPlayState()
  channels: Array<Channels | null> = []
  signature = ''
  readonly #host: ViewerHost
  readonly #ctx: LiveAttachContext
  readonly #path: string
  readonly #auto: boolean
  #channel: LiveChannel | null = null
  #held: RtspUnit[] = []
  #heldBytes = 0
  #released = false
  #closed = false
  #slots: Slot[] = []
  #session: string | null = null
  #setupUrls: string[] = []
  #base = ''
  #playing = false
  readonly #openedAt = Date.now()
  #bytesOut = 0

  constructor (host: ViewerHost, path: string, ctx: LiveAttachContext, auto: boolean) {
    this.#host = host
    this.#ctx = ctx
    this.#path = path
    this.#auto = auto
  }

  get queued (): number { return this.#ctx.client.queued }

  #attach (): LiveChannel | { status: number, code: ErrorCode, reason: string } {
    if (this.#channel !== null && this.#channel.state !== 'closed') return this.#channel
    const ch = this.#host.channelFor(this.#path, this.#ctx.route, this.#auto)
    if (!('state' in ch)) return ch
    this.#channel = ch
    ch.attach(this)
    if (ch.sdp !== null && this.channels.length !== ch.sdp.tracks.length) this.channels = ch.sdp.tracks.map(() => null)
    return ch
  }

  // ---- LiveDelegate ----------------------------------------------------------------------------

  handleClientUnit (unit: RtspUnit): void {
    if (this.#closed || this.#released) return
    if (this.#channel !== null && this.#channel.state !== 'closed' && this.#channel.verdict === 'pending') {
      this.#hold(unit)
      return
    }
    if (unit.kind === 'frame' || unit.kind === 'response') return
    if (unit.kind === 'error') {
      this.#error(unit.code, unit.reason)
      this.#push({ cseq: unit.cseq, out: serializeMessage(makeResponse(400, unit.cseq)) })
      if (unit.fatal) this.#ctx.close('client-protocol-error', 'client_error')
      return
    }
    const ch = this.#attach()
    if ('state' in ch && ch.verdict === 'pending') { this.#hold(unit); return }
    const slot: Slot = { cseq: getHeader(unit, 'CSeq') }
    this.#slots.push(slot)
    if (!('state' in ch)) {
      this.#answer(
        slot, unit, ch.status, ch.code, ch.reason, ch.status === 503 || ch.status === 453 ? [['Retry-After', '5']] : []
      )
      return
    }
    this.#process(slot, unit)
  }

  #hold (unit: RtspUnit): void {
    const size = unit.kind === 'frame' ? unit.raw.length : unit.kind === 'error' ? 256 : unit.raw.length
    this.#heldBytes += size
    if (this.#heldBytes > this.#host.pendingInputBytes) {
      this.#error('TG_ERR_RTSP_TOO_LARGE', 'client sent too much while the live path was being detected')
      this.#ctx.close('pending-overflow', 'client_error')
      return
    }
    this.#held.push(unit)
  }

  clientGone (reason: string): void {
    this.closed()
    this.#ctx.close(reason, 'ok')
  }

  closed (): void {
    if (this.#closed) return
    this.#closed = true
    for (const s of this.#slots) if (s.timer !== undefined) clearTimeout(s.timer)
    this.#slots = []
    if (!this.#released) {
      this.#channel?.detach(this)
      this.#host.logger.info({
        event: 'live-viewer-closed',
        path: this.#path,
        client: this.#ctx.info.clientAddress,
        durationMs: Date.now() - this.#openedAt,
        bytesToClient: this.#bytesOut,
        droppedFrames: this.play.droppedFrames,
        droppedBytes: this.play.droppedBytes
      }, 'live viewer closed')
    }
    this.#channel = null
  }

  // ---- ChannelViewer ---------------------------------------------------------------------------

  write (buf: Buffer, frames: number): void {
    if (this.#closed) return
    this.#bytesOut += buf.length
    this.#host.metrics.bytesTotal.inc({ direction: 'backend_to_client' }, buf.length)
    this.#ctx.client.write(buf)
    this.#ctx.sent(buf.length, frames)
  }

  canStart (): boolean {
    return this.#slots.length > 0 && this.#slots[0]!.play === true && this.#slots[0]!.out === undefined
  }

  started (info: RtpInfoEntry[]): void {
    const slot = this.#slots.find(s => s.play === true && s.out === undefined)
    if (slot === undefined) return
    this.#playing = true
    const rtpInfo = info.map(
      e => `url=${this.#setupUrls[e.track] ?? `${this.#base}`};seq=${e.seq};rtptime=${e.timestamp >>> 0}`
    ).join(',')
    this.#fill(
      slot, makeResponse(200, slot.cseq, [this.#sessionHeader(), ['Range', 'npt=now-'], ['RTP-Info', rtpInfo]])
    )
  }

  sdpReady (): void {
    const ch = this.#channel
    if (ch?.sdp == null) return
    if (this.channels.length !== ch.sdp.tracks.length) this.channels = ch.sdp.tracks.map(() => null)
    for (const s of [...this.#slots]) {
      if (s.req === undefined || s.play === true || s.out !== undefined) continue
      const req = s.req
      s.req = undefined
      this.#process(s, req)
    }
  }

  failed (status: number, code: ErrorCode, reason: string): void {
    this.#channel = null
    this.play.state = 'idle'
    this.#playing = false
    for (const s of [...this.#slots]) {
      if (s.out !== undefined || (s.req === undefined && s.play !== true)) continue
      s.req = undefined
      this.#fill(s, makeResponse(status, s.cseq, status === 503 || status === 453 ? [['Retry-After', '5']] : []))
    }
    this.#host.logger.debug({ path: this.#path, code, reason }, 'live path failed for a viewer')
  }

  verdict (kind: 'live' | 'vod'): void {
    if (this.#closed || this.#released) return
    const held = this.#held
    this.#held = []
    this.#heldBytes = 0
    if (kind === 'vod') {
      this.#released = true
      this.#channel = null
      this.#ctx.release(held)
      return
    }
    for (const u of held) this.handleClientUnit(u)
  }

  drop (reason: string, outcome: string): void { this.#ctx.close(reason, outcome) }

  // ---- requests --------------------------------------------------------------------------------

  #process (slot: Slot, req: RtspRequest): void {
    const ch = this.#channel
    if (ch === null) {
      this.#answer(slot, req, 503, 'TG_ERR_BACKEND_UNAVAILABLE', 'live path unavailable', [['Retry-After', '5']])
      return
    }
    if (req.uri !== '*') {
      const p = pathOfUrl(req.uri)
      if (p === null || !(p.replace(/\/+$/, '') === this.#path || p.startsWith(this.#path + '/'))) {
        this.#answer(
          slot, req, 404, 'TG_ERR_RTSP_NO_ROUTE',
          `'${req.uri.slice(0, 200)}' is not the tunnel's live path ${this.#path}`
        )
        return
      }
    }
    const session = getHeader(req, 'Session')
    if (session !== undefined && parseSessionHeader(session).id !== this.#session) {
      this.#answer(slot, req, 454, 'TG_ERR_RTSP_SESSION', `unknown Session '${session.slice(0, 80)}'`)
      return
    }
    switch (req.method) {
      case 'OPTIONS': this.#fill(slot, makeResponse(200, slot.cseq, [['Public', LIVE_PUBLIC]])); return
      case 'GET_PARAMETER':
      case 'SET_PARAMETER': this.#fill(
        slot, makeResponse(200, slot.cseq, this.#session === null ? [] : [this.#sessionHeader()])
      ); return
      case 'DESCRIBE':
        if (ch.sdp === null) { this.#wait(slot, req); return }
        this.#describe(slot, req, ch)
        return
      case 'SETUP':
        if (ch.sdp === null) { this.#wait(slot, req); return }
        this.#setup(slot, req, ch)
        return
      case 'PLAY': this.#play(slot, req, ch); return
      case 'PAUSE':
      case 'TEARDOWN':
        if (this.#session === null) {
          this.#answer(slot, req, 455, 'TG_ERR_LIVE_STATE', `${req.method} without a session`)
          return
        }
        ch.stop(this)
        this.#playing = false
        for (const s of this.#slots) {
          // A PLAY still waiting for its start is answered now (before this reply).
          if (s.play === true && s.out === undefined) {
            this.#fill(s, makeResponse(200, s.cseq, [this.#sessionHeader(), ['Range', 'npt=now-']]))
          }
        }
        this.#fill(slot, makeResponse(200, slot.cseq, [this.#sessionHeader()]))
        if (req.method === 'TEARDOWN') {
          this.#session = null
          this.channels = this.channels.map(() => null)
          this.signature = ''
          this.#setupUrls = []
          ch.detach(this)
          this.#channel = null
        }
        return
      default:
        this.#answer(
          slot, req, 405, 'TG_ERR_LIVE_METHOD', `${req.method.slice(0, 32)} on a live path`, [['Allow', LIVE_PUBLIC]]
        )
    }
  }

  #describe (slot: Slot, req: RtspRequest, ch: LiveChannel): void {
    const authority = /^(rtsps?:\/\/[^/?#]*)/i.exec(req.uri)?.[1] ?? 'rtsp://gateway'
    const url = req.uri.split('?')[0]!
    this.#base = /^rtsps?:\/\//i.test(url) ? (url.endsWith('/') ? url : `${url}/`) : `${authority}${this.#path}/`
    this.#fill(
      slot,
      makeResponse(
        200, slot.cseq,
        [['Content-Base', this.#base], ['Content-Type', 'application/sdp'], ['Cache-Control', 'no-cache']],
        ch.publicSdp(authority)
      )
    )
  }

  #setup (slot: Slot, req: RtspRequest, ch: LiveChannel): void {
    const transport = getHeader(req, 'Transport')
    const tcp = transport === undefined ? null : filterTcpTransports(transport)
    if (tcp === null) {
      this.#answer(slot, req, 461, 'TG_ERR_RTSP_TRANSPORT', `Transport '${(transport ?? '').slice(0, 200)}'`)
      return
    }
    const track = this.#trackOf(req.uri, ch)
    if (track === null) {
      this.#answer(slot, req, 404, 'TG_ERR_LIVE_TRACK', `no track at '${req.uri.slice(0, 200)}'`)
      return
    }
    if (this.channels.length !== ch.sdp!.tracks.length) this.channels = ch.sdp!.tracks.map(() => null)
    const used = new Set<number>()
    this.channels.forEach((c, i) => { if (c !== null && i !== track) { used.add(c.rtp); used.add(c.rtcp) } })
    let pair = parseInterleaved(tcp)
    if (pair === null || used.has(pair[0]) || used.has(pair[1])) {
      let c = 0
      while (used.has(c) || used.has(c + 1)) c += 2
      if (c > 254) { this.#answer(slot, req, 461, 'TG_ERR_RTSP_TRANSPORT', 'no free interleaved channel'); return }
      pair = [c, c + 1]
    }
    if (this.#session === null) this.#session = BigInt('0x' + randomBytes(8).toString('hex')).toString(10)
    this.channels[track] = { rtp: pair[0], rtcp: pair[1] }
    this.signature = this.channels.map(c => c === null ? '-' : `${c.rtp}.${c.rtcp}`).join(',')
    this.#setupUrls[track] = req.uri
    const reply = formatInterleavedTransport(pair, { protocol: parseTransport(tcp)[0]!.protocol, ssrc: ch.ssrc(track) })
    const headers: Header[] = [this.#sessionHeader(), ['Transport', reply], ['Cache-Control', 'no-cache']]
    this.#fill(slot, makeResponse(200, slot.cseq, headers))
  }

  /** The SDP track a SETUP URL names (absolute or relative a=control, resolved against our Content-Base). */
  #trackOf (uri: string, ch: LiveChannel): number | null {
    const tracks = ch.sdp!.tracks
    const base = this.#base !== '' ? this.#base : `rtsp://gateway${this.#path}/`
    const norm = (u: string): string => (pathOfUrl(u) ?? u).replace(/\/+$/, '')
    const want = norm(uri.split('?')[0]!)
    for (const t of tracks) {
      const c = t.control
      if (c === '' || c === '*') continue
      const target = /^[a-z][a-z0-9+.-]*:\/\//i.test(c) ? c : resolveControl(base, c)
      if (norm(target.split('?')[0]!) === want) return t.index
    }
    for (const t of tracks) {
      if (t.control !== '' && t.control !== '*' && !t.control.includes('://') &&
          want.endsWith('/' + t.control.replace(/^\/+/, ''))) { return t.index }
    }
    if (tracks.length === 1 && (want === this.#path || want === norm(base))) return 0
    return null
  }

  #play (slot: Slot, req: RtspRequest, ch: LiveChannel): void {
    if (this.#session === null || !this.channels.some(c => c !== null)) {
      this.#answer(slot, req, 455, 'TG_ERR_LIVE_STATE', 'PLAY before SETUP')
      return
    }
    if (this.#playing && this.play.state === 'playing') {
      this.#fill(slot, makeResponse(200, slot.cseq, [this.#sessionHeader(), ['Range', 'npt=now-']]))
      return
    }
    slot.play = true
    const arm = (): void => {
      slot.timer = setTimeout(contained(this.#ctx.owner, 'live-viewer-timer', () => {
        if (slot.out !== undefined || this.#closed) return
        if (this.#channel?.state === 'outage') { arm(); return } // the outage deadline decides
        this.#channel?.stop(this)
        this.#answer(
          slot, req, 504, 'TG_ERR_BACKEND_TIMEOUT', `live path did not start within ${this.#host.replyTimeoutMs} ms`
        )
      }), this.#host.replyTimeoutMs)
      slot.timer.unref()
    }
    arm()
    ch.play(this)
  }

  #wait (slot: Slot, req: RtspRequest): void {
    slot.req = req
    slot.timer = setTimeout(contained(this.#ctx.owner, 'live-viewer-timer', () => {
      if (slot.out !== undefined || this.#closed) return
      slot.req = undefined
      this.#answer(
        slot, req, 504, 'TG_ERR_BACKEND_TIMEOUT', `no SDP for the live path within ${this.#host.replyTimeoutMs} ms`
      )
    }), this.#host.replyTimeoutMs)
    slot.timer.unref()
  }

  #sessionHeader (): Header { return ['Session', `${this.#session ?? ''};timeout=${LIVE_SESSION_TIMEOUT_SEC}`] }

  #answer (
    slot: Slot, req: RtspRequest | { headers: Header[] }, status: number, code: ErrorCode, reason: string,
    extra: Header[] = []
  ): void {
    this.#error(code, reason)
    const session = getHeader(req, 'Session')
    if (session !== undefined) extra.push(['Session', session])
    this.#fill(slot, makeResponse(status, slot.cseq, extra))
  }

  #push (slot: Slot): void {
    this.#slots.push(slot)
    this.#flush()
  }

  #fill (slot: Slot, res: ReturnType<typeof makeResponse>): void {
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    this.#host.metrics.gatewayResponsesTotal.inc({ status: String(res.status) })
    slot.out = serializeMessage(res)
    this.#flush()
  }

  #flush (): void {
    while (this.#slots.length > 0 && this.#slots[0]!.out !== undefined) {
      const s = this.#slots.shift()!
      if (this.#closed) continue
      this.#bytesOut += s.out!.length
      this.#ctx.client.write(s.out!)
      this.#ctx.sent(s.out!.length, 0)
    }
  }

  #error (code: ErrorCode, reason: string): void {
    this.#host.metrics.errorsTotal.inc({ code })
    this.#host.logger.debug({ code, reason, path: this.#path }, 'live viewer error')
  }
}

/**
 * One live path on one relay (a LiveChannel): its shared backend session (Upstream), the RTP
 * rewriters that keep one continuous timeline per track across backend changes, the GOP cache,
 * and the fan-out of every packet to the viewers.
 *
 * Life: opened by its first viewer (OPTIONS/DESCRIBE); the upstream is played at once so the GOP
 * cache fills; closed live.lingerMs after its last viewer left. Upstream lost after it played:
 * 'outage' — viewers stay attached and get nothing; reconnects with backoff (reconnectMinMs
 * doubling to reconnectMaxMs) to a backend the pool chooses for the route (the same one, or
 * another healthy one); back to 'ready' on the new session's PLAY; viewers are closed only when
 * live.outageDeadlineMs passes without a session.
 *
 * Fan-out: per upstream read, the packets are rewritten once, then every playing viewer that keeps
 * up gets ONE write: the packets framed for its interleaved channels, the same Buffer shared by
 * every viewer with the same channel layout. A viewer with more than live.viewerQueueBytes unsent
 * finishes the frame it is in and then drops whole frames; it resumes at the next keyframe (the
 * GOP cache from its start), so a slow viewer costs the others nothing. After an upstream change
 * every viewer resumes at the new session's first keyframe the same way.
 */
import { contained, reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { BackendPool, BackendState } from '../backends/pool.js'
import type { ResolvedRoute } from '../backends/routes.js'
import {
  encodeInterleaved, INTERLEAVED_HEADER, writeInterleaved, type InterleavedFrame
} from '../tunnel/codec/interleaved.js'
import { maskSdpAddress, rewriteSdp } from '../tunnel/codec/sdp/rewrite.js'
import { keyModeOf, playRangeIsLive, sameLayout, sdpVerdict, type SdpInfo } from '../tunnel/codec/sdp/parse.js'
import { UrlMapper } from '../tunnel/codec/url-rewrite.js'
import { GopCache, type LivePacket } from './gop-cache.js'
import type { LiveMetrics } from './metrics.js'
import { randomSsrc, rtpPayload, rtpSeq, rtpTimestamp, TrackRewriter } from './rtp-rewriter.js'
import { Upstream } from './upstream.js'

/** Host used in the cached SDP for URLs that are mapped again for each viewer. */
export const CANONICAL_AUTHORITY = 'rtsp://live.tunnelgate.invalid'

export interface Channels { rtp: number, rtcp: number }

export interface RtpInfoEntry { track: number, seq: number, timestamp: number }

/** Per-viewer playback state, owned by the channel. */
export interface PlayState {
  state: 'idle' | 'pending' | 'playing'
  /** Over the queue cap (or resyncing after an upstream change): whole frames are skipped. */
  dropping: boolean
  /** Counted as a slow-viewer drop (false while resyncing after an upstream change). */
  slow: boolean
  /** Tracks whose current frame has ended since dropping began (their packets are skipped). */
  stopped: Set<number>
  /** Pending start: packets from a keyframe on (null = waiting for one). */
  candidate: LivePacket[] | null
  candidateBytes: number
  droppedFrames: number
  droppedBytes: number
}

export function newPlayState (): PlayState {
  return {
    state: 'idle',
    dropping: false,
    slow: false,
    stopped: new Set(),
    candidate: null,
    candidateBytes: 0,
    droppedFrames: 0,
    droppedBytes: 0
  }
}

/** What the channel needs from a viewer. */
export interface ChannelViewer {
  readonly play: PlayState
  /** Interleaved channels per track (null: track not set up). */
  readonly channels: ReadonlyArray<Channels | null>
  /** Same string = same framing (viewers share the framed buffers). */
  readonly signature: string
  readonly queued: number
  /** RTP/RTCP bytes for the client (`frames` $ frames). */
  write (buf: Buffer, frames: number): void
  /** A PLAY of this viewer may be answered now (no earlier reply pending). */
  canStart (): boolean
  /** Answer the held PLAY (RTP-Info from the first packet of each track). */
  started (info: RtpInfoEntry[]): void
  /** The SDP is known (held DESCRIBEs can be answered). */
  sdpReady (): void
  /** The channel failed: held requests get `status`. */
  failed (status: number, code: ErrorCode, reason: string): void
  /** route live: auto — the verdict for this path. */
  verdict (kind: 'live' | 'vod'): void
  /** Close the viewer's client session. */
  drop (reason: string, outcome: string): void
}

export interface ChannelDeps {
  config: Config
  pool: BackendPool
  metrics: GatewayMetrics
  logger: Logger
  live: LiveMetrics
  /** The channel closed (the registry forgets it). */
  onClosed (ch: LiveChannel): void
  /** route live: auto — remember the verdict for this path. */
  remember (path: string, kind: 'live' | 'vod'): void
}

type ChannelState = 'starting' | 'ready' | 'outage' | 'closed'

export class LiveChannel implements FaultOwner {
  readonly path: string
  readonly route: ResolvedRoute
  readonly auto: boolean
  readonly #d: ChannelDeps
  readonly #log: Logger
  readonly #label: string
  #state: ChannelState = 'starting'
  #verdict: 'pending' | 'live' = 'pending'
  #sdp: SdpInfo | null = null
  #sdpCanonical: Buffer | null = null
  #ssrcs: number[] = []
  #rewriters: TrackRewriter[] = []
  #videoTracks = new Set<number>()
  #lastTs: Array<number | null> = []
  #lastSr: Array<Buffer | null> = []
  #gop: GopCache | null = null
  #upstream: Upstream | null = null
  readonly #viewers = new Set<ChannelViewer>()
  /** The current GOP framed per channel layout, for viewers that start from it (#startFramed). */
  readonly #starts = new Map<string, StartFrames>()
  readonly #playing = new Set<ChannelViewer>()
  readonly #pending = new Set<ChannelViewer>()
  #tried = new Set<string>()
  #attempt = 0
  #lingerTimer: NodeJS.Timeout | null = null
  #reconnectTimer: NodeJS.Timeout | null = null
  #outageTimer: NodeJS.Timeout | null = null
  #outageSince = 0
  #failure: { status: number, code: ErrorCode, reason: string } | null = null
  #backendName: string | null = null

  constructor (deps: ChannelDeps, path: string, route: ResolvedRoute, auto: boolean) {
    this.#d = deps
    this.#log = deps.logger
    this.path = path
    this.route = route
    this.auto = auto
    this.#label = deps.live.label(path)
    if (!auto) this.#verdict = 'live'
  }

  get state (): ChannelState { return this.#state }
  get verdict (): 'pending' | 'live' { return this.#verdict }
  get sdp (): SdpInfo | null { return this.#sdp }
  get failure (): { status: number, code: ErrorCode, reason: string } | null { return this.#failure }
  get viewerCount (): number { return this.#viewers.size }
  get backendName (): string | null { return this.#backendName }
  get gopBytes (): number { return this.#gop?.bytes ?? 0 }
  /** The relay's SSRC of a track (announced in SETUP replies; valid once the SDP is known). */
  ssrc (track: number): number { return this.#ssrcs[track] ?? 0 }

  attach (v: ChannelViewer): void {
    if (this.#state === 'closed') return
    this.#viewers.add(v)
    this.#d.live.viewers.inc({ path: this.#label })
    if (this.#lingerTimer !== null) { clearTimeout(this.#lingerTimer); this.#lingerTimer = null }
    if (this.#upstream === null && this.#state === 'starting' && this.#reconnectTimer === null) this.#connect()
  }

  detach (v: ChannelViewer): void {
    if (!this.#viewers.delete(v)) return
    this.#playing.delete(v)
    this.#pending.delete(v)
    v.play.state = 'idle'
    this.#d.live.viewers.dec({ path: this.#label })
    if (this.#viewers.size === 0 && this.#state !== 'closed') {
      if (this.#state === 'starting' && this.#sdp === null) { this.close('no viewer left'); return }
      this.#lingerTimer = setTimeout(contained(this, 'live-channel-timer', () => {
        this.#lingerTimer = null; if (this.#viewers.size === 0) { this.close('linger over') }
      }), this.#d.config.live.lingerMs)
      this.#lingerTimer.unref()
    }
  }

  /** The path's SDP for a client whose URLs start with `publicAuthority` (rtsp://host:port). */
  publicSdp (publicAuthority: string): Buffer {
    const body = this.#sdpCanonical ?? Buffer.alloc(0)
    const m = new UrlMapper({ publicBase: publicAuthority, backendBase: CANONICAL_AUTHORITY })
    return rewriteSdp(body, url => m.toPublic(url))
  }

  /** Start playing `v` (its tracks set up): it starts at the GOP cache, or at the next keyframe. */
  play (v: ChannelViewer): void {
    if (this.#state === 'closed' || !this.#viewers.has(v)) return
    this.#playing.delete(v)
    const p = v.play
    p.state = 'pending'
    p.dropping = false
    p.stopped.clear()
    p.candidate = null
    p.candidateBytes = 0
    const cached = this.#gop?.packets() ?? []
    if (this.#state === 'ready' && cached.length > 0) this.#feedCandidate(v, cached)
    this.#pending.add(v)
    this.#tryStart(v)
  }

  /** PAUSE / TEARDOWN: no more packets for `v`. */
  stop (v: ChannelViewer): void {
    this.#playing.delete(v)
    this.#pending.delete(v)
    v.play.state = 'idle'
  }

  // ---- upstream ------------------------------------------------------------------------------

  #connect (): void {
    if (this.#state === 'closed') return
    const choice = this.#d.pool.choose(this.route.route, this.#tried)
    if (choice.backend === null) {
      if (this.#state === 'starting') {
        const full = choice.reason === 'all-full'
        this.#fail(
          full ? 453 : 503, 'TG_ERR_BACKEND_UNAVAILABLE',
          full ? 'all backends are full' : 'no backend reachable for the live path'
        )
      } else {
        this.#tried.clear()
        this.#scheduleReconnect()
      }
      return
    }
    const backend = this.#d.pool.get(choice.backend)!
    const authority = `${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`
    const url = `rtsp://${authority}${this.route.backendPrefix}${this.path.slice(this.route.publicPrefix.length)}`
    const up: Upstream = new Upstream({
      config: this.#d.config, pool: this.#d.pool, logger: this.#log, metrics: this.#d.metrics, backend, url
    }, {
      described: (sdp, body, b) => this.#described(up, sdp, body, b),
      playing: range => this.#upPlaying(up, range),
      frames: (frames, channels) => { if (this.#upstream === up) this.#frames(frames, channels) },
      refused: (status, method) => this.#refused(up, status, method),
      lost: (reason, connected) => this.#lost(up, reason, connected)
    })
    this.#upstream = up
    this.#backendName = backend.config.name
    up.start()
  }

  #described (up: Upstream, sdp: SdpInfo, body: Buffer, backend: BackendState): 'continue' | 'stop' {
    if (this.#upstream !== up || this.#state === 'closed') return 'stop'
    if (this.#sdp === null) {
      if (this.auto) {
        const v = sdpVerdict(sdp)
        if (v === 'vod') { this.#concludeVod(); return 'stop' }
        if (v === 'live') this.#concludeLive()
      }
      this.#sdp = sdp
      const mapper = new UrlMapper({
        publicBase: CANONICAL_AUTHORITY + this.route.publicPrefix,
        backendBase: `rtsp://${up.url.replace(/^rtsp:\/\//, '').replace(/\/.*$/, '')}${this.route.backendPrefix}`
      })
      this.#sdpCanonical = maskSdpAddress(rewriteSdp(body, url => mapper.toPublic(url)), backend.host)
      this.#ssrcs = sdp.tracks.map(() => randomSsrc())
      this.#rewriters = sdp.tracks.map(
        (t, i) => new TrackRewriter({ ssrcOut: this.#ssrcs[i]!, clockRate: t.clockRate })
      )
      this.#videoTracks = new Set(sdp.tracks.filter(t => t.media === 'video').map(t => t.index))
      this.#lastTs = sdp.tracks.map(() => null)
      this.#lastSr = sdp.tracks.map(() => null)
      const km = keyModeOf(sdp)
      this.#gop = new GopCache({ mode: km.mode, keyTrack: km.keyTrack, maxBytes: this.#d.config.live.gopCacheBytes })
      if (this.#verdict === 'live') for (const v of this.#viewers) v.sdpReady()
      return 'continue'
    }
    if (!sameLayout(this.#sdp, sdp)) {
      this.#error('TG_ERR_LIVE_SDP_CHANGED', `${backend.config.name}: the SDP of ${this.path} has another media layout`)
      this.#endViewers('sdp-changed', 'backend_error')
      this.close('sdp changed')
      return 'stop'
    }
    return 'continue'
  }

  #upPlaying (up: Upstream, range: string | undefined): 'continue' | 'stop' {
    if (this.#upstream !== up || this.#state === 'closed') return 'stop'
    if (this.#verdict === 'pending') {
      if (!playRangeIsLive(range)) { this.#concludeVod(); return 'stop' }
      this.#concludeLive()
    }
    const wasOutage = this.#state === 'outage'
    this.#state = 'ready'
    this.#attempt = 0
    this.#tried.clear()
    this.#d.live.upstreams.set({ path: this.#label }, 1)
    if (this.#outageTimer !== null) { clearTimeout(this.#outageTimer); this.#outageTimer = null }
    if (wasOutage) {
      this.#log.info(
        {
          event: 'live-upstream-restored',
          path: this.path,
          backend: up.backend.config.name,
          outageMs: Date.now() - this.#outageSince
        },
        'live path backend session restored'
      )
      // A new source: one continuous timeline, and every viewer resumes at its first keyframe.
      for (const r of this.#rewriters) r.newEpoch()
      this.#gop?.clear()
      this.#lastTs = this.#lastTs.map(() => null)
      this.#lastSr = this.#lastSr.map(() => null)
      for (const v of this.#playing) {
        v.play.dropping = true; v.play.slow = false; for (let i = 0; i < v.channels.length; i++) {
          v.play.stopped.add(i)
        }
      }
    } else {
      this.#log.info(
        { event: 'live-upstream-playing', path: this.path, backend: up.backend.config.name },
        'live path backend session playing'
      )
    }
    return 'continue'
  }

  #refused (up: Upstream, status: number, method: string): void {
    if (this.#upstream !== up) return
    this.#upstream = null
    this.#error(
      'TG_ERR_LIVE_UPSTREAM_REFUSED', `${up.backend.config.name} answered ${method} of ${this.path} with ${status}`
    )
    if (this.#state === 'starting' && this.#sdp === null) {
      if (this.#verdict === 'pending') { this.#concludeVod(false); return } // let ordinary proxying answer the client
      this.#fail(
        status >= 500 ? 503 : status, 'TG_ERR_LIVE_UPSTREAM_REFUSED', `backend answered ${method} with ${status}`
      )
      return
    }
    this.#lost(up, `refused ${method} (${status})`, true, false)
  }

  #lost (up: Upstream, reason: string, _connected: boolean, count = true): void {
    if (this.#upstream !== up && this.#upstream !== null) return
    this.#upstream = null
    this.#d.live.upstreams.set({ path: this.#label }, 0)
    if (this.#state === 'closed') return
    if (count) this.#error('TG_ERR_LIVE_UPSTREAM_LOST', `${up.backend.config.name}: ${reason}`)
    this.#log.warn(
      { event: 'live-upstream-lost', path: this.path, backend: up.backend.config.name, reason },
      'live path backend session lost'
    )
    if (this.#state === 'starting') {
      // Not yet played: try the next backend at once; 503 to waiting viewers when none is left.
      this.#tried.add(up.backend.config.name)
      if (this.#verdict === 'pending' && this.#sdp !== null) { this.#concludeVod(false); return }
      this.#connect()
      return
    }
    if (this.#state === 'ready') {
      this.#state = 'outage'
      this.#outageSince = Date.now()
      this.#gop?.clear()
      this.#d.live.gopCacheBytes.set({ path: this.#label }, 0)
      const deadline = this.#d.config.live.outageDeadlineMs
      this.#outageTimer = setTimeout(contained(this, 'live-channel-timer', () => {
        this.#outageTimer = null
        this.#error('TG_ERR_LIVE_OUTAGE', `no backend session for ${this.path} within ${deadline} ms`)
        for (const v of this.#pending) v.failed(503, 'TG_ERR_LIVE_OUTAGE', 'live path outage')
        this.#endViewers('live-outage', 'backend_closed')
        this.close('outage deadline')
      }), deadline)
      this.#outageTimer.unref()
    }
    this.#tried.add(up.backend.config.name)
    this.#scheduleReconnect()
  }

  #scheduleReconnect (): void {
    if (this.#state === 'closed' || this.#reconnectTimer !== null) return
    const { reconnectMinMs: min, reconnectMaxMs: max } = this.#d.config.live
    const delay = Math.min(max, min * 2 ** Math.min(this.#attempt, 20))
    this.#attempt++
    this.#reconnectTimer = setTimeout(contained(this, 'live-channel-timer', () => {
      this.#reconnectTimer = null
      if (this.#state === 'closed') return
      this.#d.live.reconnects.inc({ path: this.#label })
      // Every backend serving the route is a candidate again on each attempt (the pool skips
      // the ones in failure cool-down); `tried` only avoids the one that just failed.
      if (this.#d.pool.choose(this.route.route, this.#tried).backend === null) this.#tried.clear()
      this.#connect()
    }), delay)
    this.#reconnectTimer.unref()
  }

  #concludeLive (): void {
    this.#verdict = 'live'
    if (this.auto) {
      this.#d.remember(this.path, 'live')
      this.#d.live.detections.inc({ result: 'live' })
    }
    for (const v of [...this.#viewers]) v.verdict('live')
  }

  /** route live: auto and the path is VOD (or undecidable): viewers go back to ordinary proxying. */
  #concludeVod (remember = true): void {
    if (remember) {
      this.#d.remember(this.path, 'vod')
      this.#d.live.detections.inc({ result: 'vod' })
    }
    const vs = [...this.#viewers]
    this.close('not live')
    for (const v of vs) v.verdict('vod')
  }

  #fail (status: number, code: ErrorCode, reason: string): void {
    this.#error(code, reason)
    this.#failure = { status, code, reason }
    const vs = [...this.#viewers]
    this.close(reason)
    for (const v of vs) v.failed(status, code, reason)
  }

  #endViewers (reason: string, outcome: string): void { for (const v of [...this.#viewers]) v.drop(reason, outcome) }

  #error (code: ErrorCode, reason: string): void {
    this.#d.metrics.errorsTotal.inc({ code })
    this.#log.debug({ code, reason, path: this.path }, 'live path error')
  }

  // ---- fan-out -------------------------------------------------------------------------------

  #frames (frames: InterleavedFrame[], channels: ReadonlyMap<number, { track: number, rtcp: boolean }>): void {
    if (this.#state !== 'ready' || this.#gop === null) return
    const now = Date.now()
    const gop = this.#gop
    const batch: LivePacket[] = []
    let gopStarted = false
    for (const f of frames) {
      const c = channels.get(f.channel)
      if (c === undefined) continue
      const rw = this.#rewriters[c.track]
      if (rw === undefined) continue
      if (c.rtcp) {
        const data = rw.rtcp(f.payload, now)
        if (data === null) continue
        this.#lastSr[c.track] = data
        batch.push({ track: c.track, data, rtcp: true, seq: 0, timestamp: 0, frameStart: true, key: false })
        continue
      }
      const data = f.payload
      if (!rw.rtp(data, now)) continue
      const ts = rtpTimestamp(data)
      const frameStart = !this.#videoTracks.has(c.track) || this.#lastTs[c.track] !== ts
      this.#lastTs[c.track] = ts
      const p: LivePacket = {
        track: c.track, data, rtcp: false, seq: rtpSeq(data), timestamp: ts, frameStart, key: false
      }
      if (gop.push(p, gop.summary(p, rtpPayload(data))).gopStarted) gopStarted = true
      batch.push(p)
    }
    if (batch.length === 0) return
    // A new GOP: the framed starts of the old one are of no use to viewers that join from now on.
    if (gopStarted) this.#starts.clear()
    this.#d.live.gopCacheBytes.set({ path: this.#label }, gop.bytes)
    const cap = this.#d.config.live.viewerQueueBytes
    const shared = new Map<string, { buf: Buffer, frames: number }>()
    for (const v of this.#playing) this.#deliver(v, batch, shared, gopStarted, cap)
    for (const v of this.#pending) {
      // A keyframe recognised in this batch may have started in the previous one (SPS/PPS first).
      this.#feedCandidate(v, v.play.candidate === null && gopStarted && gop.valid ? gop.packets() : batch)
      this.#tryStart(v)
    }
  }

  #deliver (
    v: ChannelViewer, batch: LivePacket[], shared: Map<string, { buf: Buffer, frames: number }>, gopStarted: boolean,
    cap: number
  ): void {
    const p = v.play
    if (!p.dropping && v.queued <= cap) {
      let out = shared.get(v.signature)
      if (out === undefined) { out = frameAll(batch, v.channels); shared.set(v.signature, out) }
      if (out.frames > 0) v.write(out.buf, out.frames)
      return
    }
    const wasDropping = p.dropping
    const parts: Buffer[] = []
    const sent = new Set<LivePacket>()
    let queued = v.queued
    for (const pk of batch) {
      const ch = v.channels[pk.track]
      if (ch === null || ch === undefined) continue
      if (!p.dropping && pk.frameStart && queued > cap) {
        p.dropping = true
        p.slow = true
        p.stopped.clear()
        this.#error('TG_ERR_LIVE_VIEWER_SLOW', `${queued} bytes queued towards a viewer of ${this.path}`)
      }
      if (p.dropping && (p.stopped.has(pk.track) || pk.frameStart || pk.rtcp)) {
        if (!pk.rtcp) p.stopped.add(pk.track)
        if (p.slow) {
          if (pk.frameStart && !pk.rtcp) { p.droppedFrames++; this.#d.live.droppedFrames.inc({ path: this.#label }) }
          p.droppedBytes += pk.data.length
          this.#d.live.droppedBytes.inc({ path: this.#label }, pk.data.length)
        }
        continue
      }
      // Not dropping, or finishing the frame a track is in.
      const f = frameOne(pk, ch)
      parts.push(f)
      sent.add(pk)
      queued += f.length
    }
    if (wasDropping && p.dropping && gopStarted && queued <= cap) {
      // Resume at the keyframe that started in this batch: the GOP cache from its first packet
      // (without a cache, this batch's packets from the key packet on).
      const gop = this.#gop!
      const from = gop.valid ? gop.packets() : batch.slice(Math.max(0, batch.findIndex(pk => pk.key)))
      for (const pk of from) {
        if (sent.has(pk)) continue
        const ch = v.channels[pk.track]
        if (ch === null || ch === undefined) continue
        parts.push(frameOne(pk, ch))
      }
      p.dropping = false
      p.slow = false
      p.stopped.clear()
    }
    if (parts.length > 0) v.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts), parts.length)
  }

  /** Add packets to a pending viewer's start buffer (which begins at a keyframe). */
  #feedCandidate (v: ChannelViewer, packets: readonly LivePacket[]): void {
    const p = v.play
    let from = 0
    if (p.candidate === null) {
      from = packets.findIndex(pk => pk.key)
      if (from === -1) return
      p.candidate = []
      p.candidateBytes = 0
    }
    const limit = Math.max(this.#d.config.live.gopCacheBytes, this.#d.config.live.viewerQueueBytes)
    for (let i = from; i < packets.length; i++) {
      const pk = packets[i]!
      if (pk.rtcp || v.channels[pk.track] === null || v.channels[pk.track] === undefined) continue
      if (pk.key && p.candidate.length > 0 && p.candidate[0] !== pk) { p.candidate = []; p.candidateBytes = 0 }
      p.candidate.push(pk)
      p.candidateBytes += pk.data.length
    }
    if (p.candidateBytes > limit) { p.candidate = null; p.candidateBytes = 0 }
  }

  /** A pending viewer starts once its start buffer has a packet of every track it set up. */
  #tryStart (v: ChannelViewer): void {
    const p = v.play
    if (this.#state !== 'ready' || p.candidate === null || !v.canStart()) return
    const info: RtpInfoEntry[] = []
    for (let t = 0; t < v.channels.length; t++) {
      if (v.channels[t] === null || v.channels[t] === undefined) continue
      const first = p.candidate.find(pk => pk.track === t)
      if (first === undefined) return
      info.push({ track: t, seq: first.seq, timestamp: first.timestamp })
    }
    if (info.length === 0) return
    const packets = p.candidate
    p.candidate = null
    p.candidateBytes = 0
    this.#pending.delete(v)
    p.state = 'playing'
    this.#playing.add(v)
    v.started(info)
    // A sender report first (players sync tracks with it), then the GOP from its keyframe.
    const srs: Buffer[] = []
    for (const e of info) {
      const sr = this.#lastSr[e.track]
      const ch = v.channels[e.track]
      if (sr !== null && sr !== undefined && ch !== null && ch !== undefined) srs.push(encodeInterleaved(ch.rtcp, sr))
    }
    if (srs.length > 0) v.write(srs.length === 1 ? srs[0]! : Buffer.concat(srs), srs.length)
    const start = this.#startFramed(v, packets)
    for (let i = 0; i < start.bufs.length; i++) if (start.frames[i]! > 0) v.write(start.bufs[i]!, start.frames[i]!)
  }

  /**
   * `packets` (a viewer's start, from a keyframe) framed for the viewer's channel layout. Viewers of
   * one layout that start from the same keyframe share the framed bytes: what an earlier one had
   * framed is reused and only the packets that arrived since are framed (and kept for the next),
   * so a crowd joining a live path costs one framed copy of the GOP per layout, not one each.
   * At most START_LAYOUTS layouts are kept; others frame their start for themselves.
   */
  #startFramed (v: ChannelViewer, packets: readonly LivePacket[]): StartFrames {
    let c = this.#starts.get(v.signature)
    if (c === undefined || c.first !== packets[0] || c.n > packets.length || packets[c.n - 1] !== c.last) {
      const fresh: StartFrames = { first: packets[0]!, last: packets[0]!, n: 0, bufs: [], frames: [] }
      if (c === undefined && this.#starts.size >= START_LAYOUTS) {
        const own = frameAll(packets, v.channels)
        return { ...fresh, n: packets.length, bufs: [own.buf], frames: [own.frames] }
      }
      c = fresh
      this.#starts.set(v.signature, c)
    }
    if (c.n < packets.length) {
      const tail = frameAll(packets.slice(c.n), v.channels)
      c.bufs.push(tail.buf)
      c.frames.push(tail.frames)
      c.n = packets.length
      c.last = packets[packets.length - 1]!
      // Many small joins: fold the pieces into one buffer now and then (each viewer writes them all).
      if (c.bufs.length > 8) { c.bufs = [Buffer.concat(c.bufs)]; c.frames = [c.frames.reduce((a, b) => a + b, 0)] }
    }
    return c
  }

  /** Close the channel: TEARDOWN upstream, timers off. Viewers are not closed here. Idempotent. */
  get faultTag (): string { return this.path }

  /** FaultOwner: a throw in the channel's own handlers ends the channel and its viewers. */
  fault (err: unknown, where: EntryPoint): void {
    reportFault(this.#d.metrics, this.#log, where, err, { live: this.path })
    try {
      this.#endViewers('internal-error', 'internal_error')
      this.close('internal fault')
    } catch {
      this.#state = 'closed'
      this.#upstream?.close(false)
    }
  }

  close (reason: string): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    for (const t of [this.#lingerTimer, this.#reconnectTimer, this.#outageTimer]) if (t !== null) clearTimeout(t)
    this.#lingerTimer = this.#reconnectTimer = this.#outageTimer = null
    const up = this.#upstream
    this.#upstream = null
    up?.close(true)
    this.#d.live.upstreams.set({ path: this.#label }, 0)
    this.#d.live.gopCacheBytes.set({ path: this.#label }, 0)
    this.#d.live.viewers.dec({ path: this.#label }, this.#viewers.size)
    this.#viewers.clear()
    this.#playing.clear()
    this.#pending.clear()
    this.#gop?.clear()
    this.#starts.clear()
    this.#log.info({ event: 'live-path-closed', path: this.path, reason }, 'live path closed')
    this.#d.onClosed(this)
  }
}

/**
 * A start (GOP from its keyframe) framed for one channel layout: which packets (the first, the last,
 * how many) and the framed bytes in pieces, with the frames in each.
 */
interface StartFrames { first: LivePacket, last: LivePacket, n: number, bufs: Buffer[], frames: number[] }

/** Channel layouts whose framed start a path keeps for the viewers that join after (#startFramed). */
const START_LAYOUTS = 8

function frameOne (pk: LivePacket, ch: Channels): Buffer {
  return encodeInterleaved(pk.rtcp ? ch.rtcp : ch.rtp, pk.data)
}

/** Every packet of a batch framed for one channel layout, in one buffer. */
function frameAll (
  batch: readonly LivePacket[], channels: ReadonlyArray<Channels | null>
): { buf: Buffer, frames: number } {
  let size = 0
  let frames = 0
  for (const pk of batch) {
    const ch = channels[pk.track]
    if (ch === null || ch === undefined) continue
    size += INTERLEAVED_HEADER + pk.data.length
    frames++
  }
  const buf = Buffer.allocUnsafe(size)
  let off = 0
  for (const pk of batch) {
    const ch = channels[pk.track]
    if (ch === null || ch === undefined) continue
    off = writeInterleaved(buf, off, pk.rtcp ? ch.rtcp : ch.rtp, pk.data)
  }
  return { buf, frames }
}

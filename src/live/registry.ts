/**
 * The live paths of one relay (LiveRegistry): the gate ProxySession asks at a client's first
 * routed request (src/session/live-seam.ts LiveGate). A route with `live: true` hands the client
 * to a LiveViewer; `live: 'auto'` does too, unless the path is remembered as VOD — a path not yet
 * known is detected by its live channel's first backend session (SDP, then PLAY reply) while the
 * client's requests wait, and a VOD verdict gives the client back to ordinary proxying.
 *
 * Only a first request of OPTIONS or DESCRIBE starts live handling (a client that starts with
 * SETUP is proxied). Limits: live.maxPaths channels, live.maxViewersPerPath viewers each (RTSP 453).
 */
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { BackendPool } from '../backends/pool.js'
import type { ResolvedRoute } from '../backends/routes.js'
import type { RtspRequest } from '../tunnel/codec/rtsp-message.js'
import type { LiveAttachContext, LiveDelegate, LiveGate } from '../session/live-seam.js'
import { LiveChannel } from './fanout.js'
import { createLiveMetrics, type LiveMetrics } from './metrics.js'
import { LiveViewer, type ViewerHost } from './viewer-session.js'

export interface LiveRegistryDeps {
  config: Config
  pool: BackendPool
  metrics: GatewayMetrics
  logger: Logger
}

export interface LivePathStatus {
  path: string
  state: string
  backend: string | null
  viewers: number
  gopCacheBytes: number
}

export class LiveRegistry implements LiveGate, ViewerHost {
  readonly metrics: GatewayMetrics
  readonly logger: Logger
  readonly pendingInputBytes: number
  readonly replyTimeoutMs: number
  readonly live: LiveMetrics
  readonly #d: LiveRegistryDeps
  readonly #channels = new Map<string, LiveChannel>()
  readonly #verdicts = new Map<string, { kind: 'live' | 'vod', at: number }>()
  #closing = false

  constructor (d: LiveRegistryDeps) {
    this.#d = d
    this.metrics = d.metrics
    this.logger = d.logger
    this.pendingInputBytes = d.config.limits.pendingInputBytes
    this.replyTimeoutMs = d.config.backend.replyTimeoutMs
    this.live = createLiveMetrics(d.metrics.registry, d.config.live.metricsPaths)
  }

  /** LiveGate: a live viewer for this client, or null (ordinary proxying). */
  attach (req: RtspRequest, ctx: LiveAttachContext): LiveDelegate | null {
    const mode = ctx.route.route.live
    if (this.#closing || (mode !== true && mode !== 'auto')) return null
    if (req.method !== 'OPTIONS' && req.method !== 'DESCRIBE') return null
    const path = ctx.path.replace(/\/+$/, '') || '/'
    if (mode === 'auto' && this.verdictOf(path) === 'vod') return null
    return new LiveViewer(this, path, ctx, mode === 'auto')
  }

  /** The remembered live/VOD verdict of a path (route live: auto), if still fresh. */
  verdictOf (path: string): 'live' | 'vod' | undefined {
    const v = this.#verdicts.get(path)
    if (v === undefined) return undefined
    if (Date.now() - v.at > this.#d.config.live.detectCacheMs) { this.#verdicts.delete(path); return undefined }
    return v.kind
  }

  #remember (path: string, kind: 'live' | 'vod'): void {
    const max = this.#d.config.live.detectCacheEntries
    if (max === 0) return
    this.#verdicts.delete(path)
    while (this.#verdicts.size >= max) this.#verdicts.delete(this.#verdicts.keys().next().value!)
    this.#verdicts.set(path, { kind, at: Date.now() })
  }

  /** ViewerHost: the channel of a path, created on first use. */
  channelFor (
    path: string, route: ResolvedRoute, auto: boolean
  ): LiveChannel | { status: number, code: ErrorCode, reason: string } {
    const l = this.#d.config.live
    const existing = this.#channels.get(path)
    if (existing !== undefined && existing.state !== 'closed') {
      if (l.maxViewersPerPath > 0 && existing.viewerCount >= l.maxViewersPerPath) {
        return this.#tooMany(
          `live.maxViewersPerPath (${l.maxViewersPerPath}) reached on ${path}`, 'live.maxViewersPerPath'
        )
      }
      return existing
    }
    if (this.#closing) return { status: 503, code: 'TG_ERR_BACKEND_UNAVAILABLE', reason: 'relay closing' }
    if (this.#channels.size >= l.maxPaths) {
      return this.#tooMany(`live.maxPaths (${l.maxPaths}) reached`, 'live.maxPaths')
    }
    const ch = new LiveChannel({
      config: this.#d.config,
      pool: this.#d.pool,
      metrics: this.#d.metrics,
      logger: this.#d.logger,
      live: this.live,
      onClosed: c => { if (this.#channels.get(c.path) === c) this.#channels.delete(c.path) },
      remember: (p, kind) => this.#remember(p, kind)
    }, path, route, auto && this.verdictOf(path) !== 'live')
    this.#channels.set(path, ch)
    return ch
  }

  #tooMany (reason: string, limit: string): { status: number, code: ErrorCode, reason: string } {
    this.#d.metrics.limitHitsTotal?.inc({ limit })
    this.#d.logger.info({ limit }, reason)
    return { status: 453, code: 'TG_ERR_LIVE_TOO_MANY', reason }
  }

  /** Live paths open on this relay (status, admin). */
  paths (): LivePathStatus[] {
    return [...this.#channels.values()].map(
      c => ({ path: c.path, state: c.state, backend: c.backendName, viewers: c.viewerCount, gopCacheBytes: c.gopBytes })
    )
  }

  /** Close every live path (TEARDOWN to the backends). Viewers are closed by the relay. */
  close (): void {
    this.#closing = true
    for (const c of [...this.#channels.values()]) c.close('relay closing')
    this.#channels.clear()
  }
}

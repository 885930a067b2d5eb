/**
 * The backends this relay may dial: their state (sessions open, failure cool-down, draining)
 * and the choice of one for a new session through the pure policy.
 */
import type { BackendConfig, Config, RouteConfig } from '../config/config.js'
import { chooseBackend, type BackendSnapshot, type Choice } from '../balancer/policy.js'
import type { GatewayMetrics } from '../core/metrics.js'

export interface BackendState {
  config: BackendConfig
  host: string
  port: number
  sessions: number
  failedUntil: number
  draining: boolean
  /** Health from RTSP OPTIONS probes (true until a probe or, with probes on, a connection fails). */
  up: boolean
  /** Passing probes in a row since the last failure. */
  passes: number
  /** Bytes received from it since the last bandwidth sample, and the last measured rate (bits/s). */
  bytes: number
  bps: number
  /** Load figures from elsewhere (other workers, peers, the backend itself, Prometheus), by source. */
  external: Map<LoadSource, ExternalLoad>
}

/**
 * Where a load figure comes from. `workers` (the other local workers) and `cluster` (the other relays,
 * from their /metrics) exclude this relay: load = figure + own count. `backend` (its own metrics URL)
 * and `promql` include this relay as of the scrape: load = figure + own choices since then.
 */
export type LoadSource = 'workers' | 'cluster' | 'backend' | 'promql'

export interface ExternalLoad {
  sessions: number
  /** Bits/s, when the source gives it. */
  bps: number | null
  /** Date.now() of the figure. */
  at: number
  /** This relay's own sessions / bits/s when the figure arrived (for the in-flight correction). */
  ownAt: number
  ownBpsAt: number
}

export interface LoadFigure { backend: string, source: LoadSource, sessions: number, bps: number | null, at: number }

const freshState = (): Pick<BackendState, 'up' | 'passes' | 'bytes' | 'bps' | 'external'> => ({
  up: true, passes: 0, bytes: 0, bps: 0, external: new Map()
})

export class BackendPool {
  readonly #states = new Map<string, BackendState>()
  readonly #metrics: GatewayMetrics
  #cooldownMs: number
  #probing: boolean
  #rise: number
  #staleMs: number
  readonly #lastSource = new Map<string, string>()
  #sampledAt = Date.now()

  constructor (config: Config, metrics: GatewayMetrics) {
    this.#metrics = metrics
    this.#cooldownMs = config.backend.failureCooldownMs
    this.#probing = config.backend.probeIntervalMs > 0
    this.#rise = config.backend.probeRise
    this.#staleMs = config.balancer.staleIntervals * config.balancer.scrapeIntervalMs
    for (const b of config.backends) {
      const u = new URL(b.url)
      this.#states.set(b.name, {
        config: b,
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: Number(u.port || 554),
        sessions: 0,
        failedUntil: 0,
        draining: false,
        ...freshState()
      })
      metrics.backendSessions.set({ backend: b.name }, 0)
      metrics.backendUp.set({ backend: b.name }, 1)
      metrics.backendBandwidth.set({ backend: b.name }, 0)
    }
  }

  /**
   * The load the balancer uses for one backend: this relay's own figures plus the freshest outside
   * figures (promql, then the backend's own metrics, then the other relays; the other local workers
   * add to the last two). Figures older than balancer.staleIntervals scrape intervals are ignored.
   */
  loadOf (s: BackendState, now = Date.now()): { sessions: number, bps: number, source: string } {
    const fresh = (src: LoadSource): ExternalLoad | undefined => {
      const e = s.external.get(src)
      return e !== undefined && now - e.at <= this.#staleMs ? e : undefined
    }
    const workers = fresh('workers')
    const cluster = fresh('cluster')
    let sessions = s.sessions
    let bps = s.bps
    if (workers !== undefined) { sessions += workers.sessions; bps += workers.bps ?? 0 }
    if (cluster !== undefined) { sessions += cluster.sessions; bps += cluster.bps ?? 0 }
    for (const src of ['promql', 'backend'] as const) {
      const e = fresh(src)
      if (e === undefined) continue
      // The figure includes this relay as of the scrape; add only what it chose since.
      return {
        sessions: e.sessions + Math.max(0, s.sessions - e.ownAt),
        bps: e.bps === null ? bps : e.bps + Math.max(0, s.bps - e.ownBpsAt),
        source: src
      }
    }
    return { sessions, bps, source: cluster !== undefined ? 'cluster' : workers !== undefined ? 'workers' : 'local' }
  }

  /** Record an outside load figure (from a scrape, or pushed by the portal to a worker). */
  setExternal (f: LoadFigure): void {
    const s = this.#states.get(f.backend)
    if (s === undefined) return
    const prev = s.external.get(f.source)
    if (prev !== undefined && prev.at > f.at) return
    s.external.set(f.source, {
      sessions: f.sessions,
      bps: f.bps,
      at: f.at,
      ownAt: prev !== undefined && prev.at === f.at ? prev.ownAt : s.sessions,
      ownBpsAt: s.bps
    })
  }

  /** Outside figures that are still fresh (what a portal forwards to its workers). */
  externalFigures (now = Date.now()): LoadFigure[] {
    const out: LoadFigure[] = []
    for (const [name, s] of this.#states) {
      for (const [source, e] of s.external) {
        if (now - e.at <= this.#staleMs) out.push({ backend: name, source, sessions: e.sessions, bps: e.bps, at: e.at })
      }
    }
    return out
  }

  /** Bytes received from a backend (counted for its bandwidth). */
  addBytes (name: string, n: number): void {
    const s = this.#states.get(name)
    if (s === undefined) return
    s.bytes += n
    this.#metrics.backendBytes.inc({ backend: name }, n)
  }

  /** Turn the bytes counted since the last call into bits/s per backend. */
  sampleBandwidth (now = Date.now()): void {
    const dt = (now - this.#sampledAt) / 1000
    if (dt <= 0) return
    this.#sampledAt = now
    for (const [name, s] of this.#states) {
      s.bps = Math.round(s.bytes * 8 / dt)
      s.bytes = 0
      this.#metrics.backendBandwidth.set({ backend: name }, s.bps)
    }
  }

  /** Result of one health probe; a failed backend comes back after backend.probeRise passes in a row. */
  probeResult (name: string, ok: boolean): void {
    const s = this.#states.get(name)
    if (s === undefined) return
    if (ok) {
      s.passes++
      if (!s.up && s.passes >= this.#rise) s.up = true
    } else {
      s.passes = 0
      s.up = false
    }
    this.#metrics.backendUp.set({ backend: name }, this.isHealthy(s) ? 1 : 0)
  }

  isHealthy (s: BackendState, now = Date.now()): boolean { return s.up && s.failedUntil <= now }

  get (name: string): BackendState | undefined { return this.#states.get(name) }
  all (): BackendState[] { return [...this.#states.values()] }

  snapshots (route: RouteConfig, exclude: ReadonlySet<string> = new Set()): BackendSnapshot[] {
    const now = Date.now()
    const names = route.backends.length > 0 ? route.backends : [...this.#states.keys()]
    const out: BackendSnapshot[] = []
    for (const n of names) {
      const s = this.#states.get(n)
      if (s === undefined || exclude.has(n)) continue
      const load = this.loadOf(s, now)
      const last = this.#lastSource.get(n)
      if (last !== load.source) {
        if (last !== undefined) this.#metrics.balancerBackendLoad.remove({ backend: n, source: last })
        this.#lastSource.set(n, load.source)
      }
      this.#metrics.balancerBackendLoad.set({ backend: n, source: load.source }, load.sessions)
      out.push({
        name: n,
        sessions: load.sessions,
        maxSessions: s.config.maxSessions,
        weight: s.config.weight,
        healthy: this.isHealthy(s, now),
        draining: s.draining,
        bandwidthBps: load.bps,
        maxBandwidthBps: s.config.maxBandwidth
      })
    }
    return out
  }

  choose (route: RouteConfig, exclude?: ReadonlySet<string>): Choice {
    return chooseBackend(this.snapshots(route, exclude))
  }

  serves (route: RouteConfig, name: string): boolean {
    return route.backends.length === 0 ? this.#states.has(name) : route.backends.includes(name)
  }

  acquire (name: string): void {
    const s = this.#states.get(name)
    if (s === undefined) return
    s.sessions++
    this.#metrics.backendSessions.set({ backend: name }, s.sessions)
    this.#metrics.backendChoices.inc({ backend: name })
  }

  release (name: string): void {
    const s = this.#states.get(name)
    if (s === undefined) return
    s.sessions = Math.max(0, s.sessions - 1)
    this.#metrics.backendSessions.set({ backend: name }, s.sessions)
  }

  markFailed (name: string): void {
    const s = this.#states.get(name)
    if (s === undefined) return
    s.failedUntil = Date.now() + this.#cooldownMs
    // With probes on, a connection failure also takes it out until it passes probes again.
    if (this.#probing) { s.up = false; s.passes = 0 }
    this.#metrics.backendConnectFailures.inc({ backend: name })
    this.#metrics.backendUp.set({ backend: name }, 0)
  }

  markUp (name: string): void {
    const s = this.#states.get(name)
    if (s !== undefined) {
      s.failedUntil = 0
      if (s.up) this.#metrics.backendUp.set({ backend: name }, 1)
    }
  }

  /** Operator drain: a draining backend keeps its sessions and gets no new one. False if unknown. */
  setDraining (name: string, draining: boolean): boolean {
    const s = this.#states.get(name)
    if (s === undefined) return false
    s.draining = draining
    return true
  }

  /**
   * A reloaded config: existing backends get their new settings (capacity, weight, URL for new
   * connections) in place and keep their sessions, health and drain state; new ones are added;
   * removed ones are no longer chosen (their open sessions run to their end).
   */
  reconfigure (config: Config): void {
    this.#cooldownMs = config.backend.failureCooldownMs
    this.#probing = config.backend.probeIntervalMs > 0
    this.#rise = config.backend.probeRise
    this.#staleMs = config.balancer.staleIntervals * config.balancer.scrapeIntervalMs
    const keep = new Set<string>()
    for (const b of config.backends) {
      keep.add(b.name)
      const u = new URL(b.url)
      const host = u.hostname.replace(/^\[|\]$/g, '')
      const port = Number(u.port || 554)
      const s = this.#states.get(b.name)
      if (s !== undefined) { s.config = b; s.host = host; s.port = port; continue }
      this.#states.set(b.name, { config: b, host, port, sessions: 0, failedUntil: 0, draining: false, ...freshState() })
      this.#metrics.backendSessions.set({ backend: b.name }, 0)
      this.#metrics.backendUp.set({ backend: b.name }, 1)
    }
    for (const name of [...this.#states.keys()]) {
      if (keep.has(name)) continue
      this.#states.delete(name)
      this.#metrics.backendSessions.remove({ backend: name })
      this.#metrics.backendUp.remove({ backend: name })
      this.#metrics.backendBandwidth.remove({ backend: name })
      const src = this.#lastSource.get(name)
      if (src !== undefined) {
        this.#metrics.balancerBackendLoad.remove({ backend: name, source: src })
        this.#lastSource.delete(name)
      }
    }
  }
}

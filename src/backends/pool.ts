/**
 * The backends this relay may dial: their state (sessions open, failure cool-down, draining)
 * and the choice of one for a new session through the pure policy.
 */
import type { BackendConfig, Config, RouteConfig } from '../config.js'
import { chooseBackend, type BackendSnapshot, type Choice } from '../balancer/policy.js'
import type { GatewayMetrics } from '../metrics.js'

export interface BackendState {
  config: BackendConfig
  host: string
  port: number
  sessions: number
  failedUntil: number
  draining: boolean
}

export class BackendPool {
  readonly #states = new Map<string, BackendState>()
  readonly #metrics: GatewayMetrics
  #cooldownMs: number

  constructor (config: Config, metrics: GatewayMetrics) {
    this.#metrics = metrics
    this.#cooldownMs = config.backend.failureCooldownMs
    for (const b of config.backends) {
      const u = new URL(b.url)
      this.#states.set(b.name, { config: b, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 554), sessions: 0, failedUntil: 0, draining: false })
      metrics.backendSessions.set({ backend: b.name }, 0)
    }
  }

  get (name: string): BackendState | undefined { return this.#states.get(name) }
  all (): BackendState[] { return [...this.#states.values()] }

  snapshots (route: RouteConfig, exclude: ReadonlySet<string> = new Set()): BackendSnapshot[] {
    const now = Date.now()
    const names = route.backends.length > 0 ? route.backends : [...this.#states.keys()]
    const out: BackendSnapshot[] = []
    for (const n of names) {
      const s = this.#states.get(n)
      if (s === undefined || exclude.has(n)) continue
      out.push({ name: n, sessions: s.sessions, maxSessions: s.config.maxSessions, weight: s.config.weight, healthy: s.failedUntil <= now, draining: s.draining })
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
    this.#metrics.backendConnectFailures.inc({ backend: name })
  }

  markUp (name: string): void {
    const s = this.#states.get(name)
    if (s !== undefined) s.failedUntil = 0
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
    const keep = new Set<string>()
    for (const b of config.backends) {
      keep.add(b.name)
      const u = new URL(b.url)
      const host = u.hostname.replace(/^\[|\]$/g, '')
      const port = Number(u.port || 554)
      const s = this.#states.get(b.name)
      if (s !== undefined) { s.config = b; s.host = host; s.port = port; continue }
      this.#states.set(b.name, { config: b, host, port, sessions: 0, failedUntil: 0, draining: false })
      this.#metrics.backendSessions.set({ backend: b.name }, 0)
    }
    for (const name of [...this.#states.keys()]) {
      if (keep.has(name)) continue
      this.#states.delete(name)
      this.#metrics.backendSessions.remove({ backend: name })
    }
  }
}

/**
 * The operator's handle on a running gateway, whatever its shape: the in-process relay, local
 * relay workers (over IPC) or remote relay nodes (portal role). The admin API, the status page
 * and SIGHUP go through it.
 */
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import { TunnelgateError } from '../core/errors.js'
import { addCounts, countsByCode, type GatewayMetrics } from '../core/metrics.js'
import type { Relay } from '../route/relay.js'
import type { WorkerPool } from '../route/workers.js'
import type { RemoteRelays } from '../route/remote-relays.js'
import type { SessionSnapshot } from '../session/proxy-session.js'
import { processInfo, type ProcessInfo } from './process-view.js'
import type { RelaySummary } from '../route/relay-view.js'

export interface RelayInfo {
  id: string
  kind: 'in-process' | 'worker' | 'remote'
  up: boolean
  draining: boolean
  /** Tunnels open (remote: as the relay node's /status/summary says; null when it did not answer). */
  tunnels: number | null
  /** Bytes relayed since start, both directions (remote: bytes this portal forwarded). */
  bytes: number
}

export interface BackendInfo {
  name: string
  url: string
  healthy: boolean
  draining: boolean
  sessions: number
  maxSessions: number
  weight: number
  /** Load the balancer sees: sessions / weight (what least-load compares). */
  load: number
  /** Bytes relayed to and from it since start. */
  bytes: number
}

export interface ReloadResult {
  /** Settings applied in place (backends, routes, limits and timeouts for new tunnels). */
  applied: string[]
  /** Settings that changed but need a restart to take effect. */
  restartRequired: string[]
  backends: string[]
  routes: number
}

/** Top-level settings a reload applies in place; a change to any other one needs a restart. */
const RELOADABLE = ['limits', 'tunnel', 'backend', 'backends', 'routes']

export interface OperatorDeps {
  relay: Relay
  workers: WorkerPool | null
  remote: RemoteRelays | null
  metrics: GatewayMetrics
  logger: Logger
  config: Config
  /** Builds the config again from its sources (file, environment, command line); absent = no reload. */
  loadConfig?: (() => Config) | undefined
}

export class Operator {
  readonly #d: OperatorDeps
  #config: Config
  /** Backends drained by the operator (kept across worker restarts and reloads). */
  readonly #drainedBackends = new Set<string>()
  #reloading = false

  constructor (deps: OperatorDeps) {
    this.#d = deps
    this.#config = deps.config
  }

  get config (): Config { return this.#config }
  get canReload (): boolean { return this.#d.loadConfig !== undefined }

  async summaries (): Promise<RelaySummary[]> {
    const { workers, relay, remote } = this.#d
    if (remote !== null) return await remote.summaries()
    if (workers === null) return [relay.summary()]
    return (await workers.ask<RelaySummary>('summary')).flatMap(r => r.data === null ? [] : [r.data])
  }

  /** `sums`: the relays' summaries when the caller already has them (summaries()), else asked for here. */
  async relays (sums?: readonly RelaySummary[]): Promise<RelayInfo[]> {
    const { workers, remote } = this.#d
    if (remote !== null) {
      // A relay node's tunnels are what it said in its summaries (null when it did not answer).
      const got = sums ?? await this.summaries()
      return remote.relays().map(r => {
        const own = got.filter(s => s.relay.startsWith(`${r.id}/`))
        return {
          id: r.id,
          kind: 'remote',
          up: r.up,
          draining: r.draining,
          tunnels: own.length === 0 ? null : own.reduce((n, s) => n + s.tunnels, 0),
          bytes: r.bytes
        }
      })
    }
    if (workers === null) {
      const s = sums?.[0] ?? this.#d.relay.summary()
      return [{ id: s.relay, kind: 'in-process', up: true, draining: false, tunnels: s.tunnels, bytes: s.bytes }]
    }
    const got = sums ?? await this.summaries()
    return workers.slotsInfo().map(w => {
      const s = got.find(x => x.relay === `w${w.id}`) ?? null
      return {
        id: `w${w.id}`, kind: 'worker', up: w.up, draining: w.draining, tunnels: s?.tunnels ?? 0, bytes: s?.bytes ?? 0
      }
    })
  }

  /**
   * tunnelgate_errors_total by code, this process's and its local workers' (what /metrics sums),
   * read from the counters: no registry is rendered (the status feed asks every few seconds).
   */
  async errorCounts (): Promise<Record<string, number>> {
    const out = await countsByCode(this.#d.metrics.errorsTotal)
    if (this.#d.workers !== null) {
      for (const r of await this.#d.workers.ask<Record<string, number>>('errors')) addCounts(out, r.data)
    }
    return out
  }

  /** Descriptors, handles and memory of the main process and of each local relay worker. */
  async processes (): Promise<ProcessInfo[]> {
    const { workers } = this.#d
    const list = [processInfo('portal', 'portal')]
    if (workers === null) return list
    const got = await workers.ask<ProcessInfo>('process')
    for (const w of workers.slotsInfo()) {
      list.push(got.find(x => x.slot === w.id)?.data ?? { id: `w${w.id}`, kind: 'worker', up: false })
    }
    return list
  }

  async tunnels (): Promise<SessionSnapshot[]> {
    const { workers, remote, relay } = this.#d
    if (remote !== null) return []
    if (workers === null) return relay.listTunnels()
    return (await workers.ask<SessionSnapshot[]>('tunnels')).flatMap(r => r.data ?? [])
  }

  /** Close one tunnel by id; false when no relay has it. */
  async kick (id: string): Promise<boolean> {
    const { workers, remote, relay } = this.#d
    if (remote !== null) return false
    if (workers === null) return relay.kick(id)
    const m = /^w(\d+)\./.exec(id)
    if (m === null) return false
    const r = await workers.ask<boolean>('kick', id, Number(m[1]))
    return r.some(x => x.data === true)
  }

  async setRelayDraining (id: string, draining: boolean): Promise<boolean> {
    const { workers, remote } = this.#d
    let ok = false
    if (remote !== null) ok = remote.setDraining(id, draining)
    else if (workers !== null) {
      const m = /^w(\d+)$/.exec(id)
      ok = m !== null && workers.setDraining(Number(m[1]), draining)
    }
    if (ok) {
      this.#d.logger.warn(
        { event: 'relay-drain', relay: id, draining }, draining ? 'relay draining' : 'relay undrained'
      )
    }
    return ok
  }

  /** `summaries`: as for relays(). */
  async backends (summaries?: readonly RelaySummary[]): Promise<BackendInfo[]> {
    const { workers, remote, relay } = this.#d
    if (remote !== null) return []
    const sums = summaries ?? await this.summaries()
    const bytes = (name: string): number => sums.reduce((n, s) => n + (s.backends[name]?.bytes ?? 0), 0)
    const list = relay.pool.all().map(b => ({
      name: b.config.name,
      url: b.config.url,
      healthy: relay.pool.isHealthy(b),
      draining: this.#drainedBackends.has(b.config.name) || b.draining,
      sessions: b.sessions,
      maxSessions: b.config.maxSessions,
      weight: b.config.weight,
      load: 0,
      bytes: bytes(b.config.name)
    }))
    if (workers !== null) {
      const st = await workers.status()
      for (const b of list) {
        b.sessions = 0
        for (const w of st) {
          for (const wb of w.backends) if (wb.name === b.name) { b.sessions += wb.sessions; b.healthy &&= wb.healthy }
        }
      }
    }
    // The load the balancer compares (policy loadOf): sessions per weight, with the cluster-wide
    // session figures the in-process relay's pool uses when it has them.
    const seen = workers === null
      ? new Map(relay.pool.snapshots({ path: '/', backends: [] }).map(s => [s.name, s.sessions]))
      : new Map<string, number>()
    for (const b of list) b.load = Math.round((seen.get(b.name) ?? b.sessions) / b.weight * 1000) / 1000
    return list
  }

  async setBackendDraining (name: string, draining: boolean): Promise<boolean> {
    const { workers, remote, relay } = this.#d
    if (remote !== null || relay.pool.get(name) === undefined) return false
    if (draining) this.#drainedBackends.add(name); else this.#drainedBackends.delete(name)
    relay.pool.setDraining(name, draining)
    if (workers !== null) {
      workers.setDrainedBackends([...this.#drainedBackends])
      await workers.ask('drain-backend', { name, draining })
    }
    this.#d.logger.warn(
      { event: 'backend-drain', backend: name, draining }, draining ? 'backend draining' : 'backend undrained'
    )
    return true
  }

  /**
   * Build the config again from its sources and apply what can change in place. Open tunnels keep
   * running with the settings they started with; new tunnels get the new ones. A config that
   * does not validate changes nothing (TG_ERR_CFG_INVALID).
   */
  async reload (): Promise<ReloadResult> {
    const load = this.#d.loadConfig
    if (load === undefined) {
      throw new TunnelgateError('TG_ERR_CFG_RELOAD', 'this gateway was started without a config file to reload')
    }
    if (this.#reloading) throw new TunnelgateError('TG_ERR_CFG_RELOAD', 'a reload is already running')
    this.#reloading = true
    try {
      let next: Config
      try { next = load() } catch (err) {
        this.#d.metrics.errorsTotal.inc({ code: 'TG_ERR_CFG_INVALID' })
        this.#d.logger.error(
          { event: 'config-reload', err: (err as Error).message },
          'config reload refused; the running config is unchanged'
        )
        throw err
      }
      const prev = this.#config
      const changed = Object.keys(next).filter(
        k => JSON.stringify(
          (prev as unknown as Record<string, unknown>)[k]
        ) !== JSON.stringify((next as unknown as Record<string, unknown>)[k])
      )
      const applied = changed.filter(k => RELOADABLE.includes(k))
      const restartRequired = changed.filter(k => !RELOADABLE.includes(k))
      const { relay, workers } = this.#d
      relay.reconfigure(next)
      for (const n of this.#drainedBackends) if (!relay.pool.setDraining(n, true)) this.#drainedBackends.delete(n)
      this.#d.remote?.setLimits(next.limits)
      if (workers !== null) {
        workers.setDrainedBackends([...this.#drainedBackends])
        await workers.reconfigure(next)
      }
      this.#config = next
      this.#d.logger.warn({ event: 'config-reload', applied, restartRequired }, 'config reloaded')
      return { applied, restartRequired, backends: next.backends.map(b => b.name), routes: next.routes.length }
    } finally { this.#reloading = false }
  }
}

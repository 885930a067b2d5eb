/**
 * Starts what feeds the balancer of one relay process: health probes (health.ts), load scrapes and
 * bandwidth sampling (load-scraper.ts), and, in a portal with local workers, the push of load figures
 * to every worker each `balancer.scrapeIntervalMs` (each worker gets the sum of the OTHER workers'
 * sessions and bits/s, plus the outside figures the portal scraped), so every worker decides on the
 * load of the whole process tree, not only its own share.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { Gauge } from 'prom-client'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { BackendHealth } from './health.js'
import { INSTANCE_INFO, LoadScraper } from './load-scraper.js'
import type { BackendPool, LoadFigure } from './pool.js'

/** What a portal needs from its worker pool to share load between workers. */
export interface LoadPushTarget { pushLoad (outside: LoadFigure[]): Promise<void> }

export interface Balancing {
  readonly instanceId: string
  readonly scraper: LoadScraper
  readonly health: BackendHealth
  close (): Promise<void>
}

export interface BalancingDeps {
  config: Config
  pool: BackendPool
  metrics: GatewayMetrics
  logger: Logger
  /** Scrape peers / metrics URLs / PromQL here (false in a worker: its portal does and pushes). */
  scrape: boolean
  /** Probe backends here. */
  probe: boolean
  /** Publish this process tree's instance id (top-level process only). */
  instanceId?: string
  workers?: LoadPushTarget | null
}

export function startBalancing (deps: BalancingDeps): Balancing {
  const { config, pool, metrics, logger } = deps
  const instanceId = deps.instanceId ?? randomUUID()
  if (deps.instanceId !== undefined) {
    const info = new Gauge({
      name: INSTANCE_INFO,
      help: 'Identity of this tunnelgate process tree (a relay finds itself among cluster.peers by it)',
      labelNames: ['id'],
      registers: [metrics.registry]
    })
    info.set({ id: instanceId }, 1)
  }
  const log = logger.child({ subsystem: 'balancer' })
  const scraper = new LoadScraper(config, pool, metrics, log, { instanceId, scrape: deps.scrape })
  const health = new BackendHealth(config, pool, metrics, log)
  scraper.start()
  if (deps.probe) health.start()
  let push: NodeJS.Timeout | null = null
  let pushing: Promise<void> | null = null
  const workers = deps.workers ?? null
  if (workers !== null) {
    push = setInterval(() => {
      if (pushing !== null) return
      pushing = workers.pushLoad(pool.externalFigures()).catch(err => {
        log.warn({ err }, 'load push to workers failed')
      }).finally(() => { pushing = null })
    }, config.balancer.scrapeIntervalMs)
    push.unref()
  }
  return {
    instanceId,
    scraper,
    health,
    async close () {
      if (push !== null) clearInterval(push)
      await pushing
      await Promise.all([scraper.close(), health.close()])
    }
  }
}

/**
 * Per worker, the figures to send: the outside figures as they are, plus `workers` = the sum of the
 * other workers' sessions and bits/s per backend (pure; exported for tests).
 */
export function workerFigures (
  statuses: ReadonlyArray<{ backends: ReadonlyArray<{ name: string, sessions: number, bps?: number }> } | null>,
  outside: readonly LoadFigure[], at: number
): LoadFigure[][] {
  const total = new Map<string, { sessions: number, bps: number }>()
  for (const s of statuses) {
    if (s === null) continue
    for (const b of s.backends) {
      const t = total.get(b.name) ?? { sessions: 0, bps: 0 }
      t.sessions += b.sessions
      t.bps += b.bps ?? 0
      total.set(b.name, t)
    }
  }
  return statuses.map(s => {
    const out = [...outside]
    for (const [name, t] of total) {
      const own = s?.backends.find(b => b.name === name)
      out.push({
        backend: name, source: 'workers', sessions: t.sessions - (own?.sessions ?? 0), bps: t.bps - (own?.bps ?? 0), at
      })
    }
    return out
  })
}

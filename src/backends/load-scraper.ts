/**
 * The balancer's outside load figures, read with undici (the policy itself stays pure):
 *
 *  - `cluster.peers`: every peer relay's `/metrics` (on its tunnel port, a read signed with
 *    `cluster.secret`: forward-signer.ts); `tunnelgate_backend_sessions{backend}` and
 *    `tunnelgate_backend_bandwidth_bits{backend}` summed over the peers other than this relay (a peer
 *    that serves this relay's own `tunnelgate_relay_instance_info{id}` is this relay and is skipped);
 *  - `backends[].metricsUrl`: the backend's own `/metrics` (`metricsSessions` gauge, `metricsBytes`
 *    counter → bits/s from two scrapes);
 *  - `balancer.promql`: instant queries to a Prometheus server's HTTP API (`/api/v1/query`) returning a
 *    vector with a `backend` label.
 *
 * Each scrape result goes to `BackendPool.setExternal` with its time; the pool ignores figures older
 * than `balancer.staleIntervals` intervals. A failed peer keeps its last good figure until then. Every
 * failure is counted (`tunnelgate_balancer_scrape_errors_total{target}`, `TG_ERR_BALANCER_SCRAPE`) and
 * logged once per change of state. Also samples this relay's own bandwidth every interval.
 */
import { promises as dns } from 'node:dns'
import type { Logger } from 'pino'
import { Pool } from 'undici'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { parsePromText, sumBy, type PromSample } from '../balancer/prom-text.js'
import { parseRelaySpec } from '../config/relay-spec.js'
import type { BackendPool } from './pool.js'
import { redactUrl } from '../core/redact.js'
import { ForwardSigner } from '../core/forward-signer.js'

/** This process tree's identity in `tunnelgate_relay_instance_info{id}` (self-detection among peers). */
export const INSTANCE_INFO = 'tunnelgate_relay_instance_info'

interface PeerFigures { sessions: Map<string, number>, bits: Map<string, number>, at: number }

interface BackendCounter { bytes: number, at: number }

export interface LoadScraperOptions {
  /** This process tree's instance id (see INSTANCE_INFO). */
  instanceId: string
  /** Scrape peers, metrics URLs and PromQL (false in a worker: the portal scrapes and pushes). */
  scrape: boolean
}

export class LoadScraper {
  readonly #config: Config
  readonly #pool: BackendPool
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #opts: LoadScraperOptions
  /** Peers' /metrics are read on their tunnel ports, signed with cluster.secret. */
  readonly #signer: ForwardSigner | null
  readonly #clients = new Map<string, Pool>()
  readonly #peers = new Map<string, PeerFigures>()
  readonly #failing = new Set<string>()
  /** Peer addresses that turned out to be this relay. */
  readonly #self = new Set<string>()
  readonly #counters = new Map<string, BackendCounter>()
  #peerAddrs: string[] = []
  #resolvedAt = 0
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #closed = false

  constructor (config: Config, pool: BackendPool, metrics: GatewayMetrics, logger: Logger, opts: LoadScraperOptions) {
    this.#config = config
    this.#pool = pool
    this.#metrics = metrics
    this.#log = logger
    this.#opts = opts
    this.#signer = config.cluster.secret === '' ? null : new ForwardSigner(config.cluster.secret)
  }

  get scraping (): boolean {
    const c = this.#config
    return this.#opts.scrape &&
      (c.cluster.peers.length > 0 || c.balancer.promql.url !== '' || c.backends.some(b => b.metricsUrl !== ''))
  }

  start (): void {
    this.#timer = setInterval(() => { void this.tick() }, this.#config.balancer.scrapeIntervalMs)
    this.#timer.unref()
    void this.tick()
  }

  /** One round: sample own bandwidth, scrape every source (a round still running is not doubled). */
  tick (): Promise<void> {
    this.#pool.sampleBandwidth()
    if (!this.scraping || this.#closed) return Promise.resolve()
    if (this.#running !== null) return this.#running
    this.#running = Promise.all([this.#scrapePeers(), this.#scrapeBackends(), this.#scrapePromql()])
      .then(() => {}, err => { this.#log.error({ err }, 'load scrape round failed') })
      .finally(() => { this.#running = null })
    return this.#running
  }

  #client (origin: string): Pool {
    let p = this.#clients.get(origin)
    if (p === undefined) {
      p = new Pool(origin, {
        connections: 1, keepAliveTimeout: Math.max(10_000, this.#config.balancer.scrapeIntervalMs * 3), pipelining: 1
      })
      this.#clients.set(origin, p)
    }
    return p
  }

  async #get (url: string, signed = false): Promise<string> {
    const u = new URL(url)
    const t = this.#config.balancer.scrapeTimeoutMs
    const proof = signed && this.#signer !== null ? this.#signer.readHeaders(u.pathname) : {}
    const res = await this.#client(u.origin).request({
      path: u.pathname + u.search,
      method: 'GET',
      headersTimeout: t,
      bodyTimeout: t,
      headers: { accept: 'text/plain;version=0.0.4, application/json', ...proof }
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
    if (text.length > 8 * 1024 * 1024) throw new Error('response over 8 MiB')
    return text
  }

  #ok (target: string): void { if (this.#failing.delete(target)) this.#log.info({ target }, 'load scrape works again') }

  #fail (target: string, err: unknown): void {
    this.#metrics.balancerScrapeErrors.inc({ target })
    this.#metrics.errorsTotal.inc({ code: 'TG_ERR_BALANCER_SCRAPE' })
    const msg = err instanceof Error ? err.message : String(err)
    if (!this.#failing.has(target)) {
      this.#failing.add(target)
      this.#log.warn(
        { code: 'TG_ERR_BALANCER_SCRAPE', target, err: msg },
        'load scrape failed; using the last good figures until they are stale'
      )
    } else { this.#log.debug({ code: 'TG_ERR_BALANCER_SCRAPE', target, err: msg }, 'load scrape failed') }
  }

  async #resolvePeers (): Promise<string[]> {
    const now = Date.now()
    if (now - this.#resolvedAt < this.#config.cluster.dnsIntervalMs && this.#resolvedAt > 0) return this.#peerAddrs
    const out: string[] = []
    for (const spec of this.#config.cluster.peers) {
      const s = parseRelaySpec(spec)
      if (s.kind === 'static') { out.push(hostPort(s.host, s.port)); continue }
      const addrs: string[] = []
      try { addrs.push(...await dns.resolve4(s.name)) } catch {}
      try { addrs.push(...await dns.resolve6(s.name)) } catch {}
      if (addrs.length === 0) {
        try { for (const a of await dns.lookup(s.name, { all: true })) addrs.push(a.address) } catch {}
      }
      if (addrs.length === 0) this.#fail(spec, new Error('DNS name resolves to no address'))
      for (const a of addrs) out.push(hostPort(a, s.port))
    }
    this.#peerAddrs = out
    this.#resolvedAt = now
    for (const k of this.#peers.keys()) if (!out.includes(k)) this.#peers.delete(k)
    return out
  }

  async #scrapePeers (): Promise<void> {
    if (this.#config.cluster.peers.length === 0) return
    const peers = await this.#resolvePeers()
    await Promise.all(peers.map(async addr => {
      try {
        const samples = parsePromText(await this.#get(`http://${addr}/metrics`, true))
        if (isSelf(samples, this.#opts.instanceId)) {
          this.#self.add(addr)
          this.#peers.delete(addr)
          this.#ok(addr)
          return
        }
        this.#peers.set(addr, {
          sessions: sumBy(samples, 'tunnelgate_backend_sessions', 'backend'),
          bits: sumBy(samples, 'tunnelgate_backend_bandwidth_bits', 'backend'),
          at: Date.now()
        })
        this.#ok(addr)
      } catch (err) { this.#fail(addr, err) }
    }))
    // Sum over the other relays whose figures are fresh; the sum is as old as its oldest part. When
    // every listed peer is this relay, the rest of the cluster is nobody (0). When no other peer has a
    // fresh figure, nothing is recorded and the last sum goes stale (own counts only).
    const staleMs = this.#config.balancer.staleIntervals * this.#config.balancer.scrapeIntervalMs
    const now = Date.now()
    const others = peers.filter(a => !this.#self.has(a))
    const fresh = others.map(a => this.#peers.get(a)).filter(
      (p): p is PeerFigures => p !== undefined && now - p.at <= staleMs
    )
    if (others.length > 0 && fresh.length === 0) return
    const at = fresh.length > 0 ? Math.min(...fresh.map(p => p.at)) : now
    for (const b of this.#pool.all()) {
      const name = b.config.name
      let sessions = 0
      let bits = 0
      for (const p of fresh) { sessions += p.sessions.get(name) ?? 0; bits += p.bits.get(name) ?? 0 }
      this.#pool.setExternal({ backend: name, source: 'cluster', sessions, bps: bits, at })
    }
  }

  async #scrapeBackends (): Promise<void> {
    await Promise.all(this.#pool.all().filter(b => b.config.metricsUrl !== '').map(async b => {
      const c = b.config
      try {
        const samples = parsePromText(await this.#get(c.metricsUrl))
        const now = Date.now()
        const named = samples.filter(s => s.name === c.metricsSessions)
        if (named.length === 0) throw new Error(`no ${c.metricsSessions} sample`)
        const sessions = named.reduce((n, s) => n + s.value, 0)
        let bps: number | null = null
        if (c.metricsBytes !== '') {
          const bytes = samples.filter(s => s.name === c.metricsBytes).reduce((n, s) => n + s.value, 0)
          const prev = this.#counters.get(c.name)
          this.#counters.set(c.name, { bytes, at: now })
          if (prev !== undefined && bytes >= prev.bytes && now > prev.at) {
            bps = Math.round((bytes - prev.bytes) * 8 / ((now - prev.at) / 1000))
          }
        }
        if (!Number.isFinite(sessions) || sessions < 0) throw new Error(`bad ${c.metricsSessions} value ${sessions}`)
        this.#pool.setExternal({ backend: c.name, source: 'backend', sessions, bps, at: now })
        this.#ok(redactUrl(c.metricsUrl))
      } catch (err) { this.#fail(redactUrl(c.metricsUrl), err) }
    }))
  }

  async #query (query: string): Promise<Map<string, number>> {
    const base = this.#config.balancer.promql.url.replace(/\/+$/, '')
    const text = await this.#get(`${base}/api/v1/query?query=${encodeURIComponent(query)}`)
    return parsePromqlVector(text, 'backend')
  }

  async #scrapePromql (): Promise<void> {
    const q = this.#config.balancer.promql
    if (q.url === '') return
    const target = `promql:${redactUrl(q.url)}`
    try {
      const at = Date.now()
      const [sessions, bits] = await Promise.all(
        [this.#query(q.query), q.bandwidthQuery === '' ? Promise.resolve(null) : this.#query(q.bandwidthQuery)]
      )
      for (const b of this.#pool.all()) {
        const name = b.config.name
        const s = sessions.get(name)
        // A backend the query does not list has no series yet (nothing chosen anywhere): 0.
        this.#pool.setExternal({
          backend: name, source: 'promql', sessions: s ?? 0, bps: bits === null ? null : (bits.get(name) ?? 0), at
        })
      }
      this.#ok(target)
    } catch (err) { this.#fail(target, err) }
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    await this.#running
    await Promise.all([...this.#clients.values()].map(p => p.close().catch(() => {})))
    this.#clients.clear()
  }
}

function hostPort (host: string, port: number): string { return `${host.includes(':') ? `[${host}]` : host}:${port}` }

function isSelf (samples: readonly PromSample[], id: string): boolean {
  return samples.some(s => s.name === INSTANCE_INFO && s.labels.id === id)
}

/**
 * The `data.result` of a Prometheus `/api/v1/query` answer of type vector, as label value → number.
 * Throws on anything else (error status, another result type, a missing label, a non-number).
 */
export function parsePromqlVector (text: string, label: string): Map<string, number> {
  let j: unknown
  try { j = JSON.parse(text) } catch { throw new Error('PromQL answer is not JSON') }
  const o = j as { status?: unknown, error?: unknown, data?: { resultType?: unknown, result?: unknown } }
  if (o.status !== 'success') throw new Error(`PromQL status ${String(o.status)}: ${String(o.error ?? '')}`)
  if (o.data?.resultType !== 'vector' || !Array.isArray(o.data.result)) {
    throw new Error(`PromQL result is not a vector (${String(o.data?.resultType)})`)
  }
  const out = new Map<string, number>()
  for (const r of o.data.result as Array<{ metric?: Record<string, unknown>, value?: unknown }>) {
    const key = r.metric?.[label]
    if (typeof key !== 'string') {
      throw new Error(`PromQL series without a '${label}' label: ${JSON.stringify(r.metric)}`)
    }
    const v = Array.isArray(r.value) ? Number(r.value[1]) : NaN
    if (!Number.isFinite(v)) throw new Error(`PromQL value for ${key} is not a number`)
    out.set(key, (out.get(key) ?? 0) + v)
  }
  return out
}

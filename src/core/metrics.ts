/**
 * Gateway metrics (prom-client, one Registry per process, passed in — never the global default).
 * Names and labels mirror docs/metrics.md; labels stay low-cardinality (no cookies, no session ids).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client'

export interface GatewayMetrics {
  registry: Registry
  tunnelsActive: Gauge
  tunnelsTotal: Counter<'outcome' | 'transport'>
  tunnelSetupSeconds: Histogram
  bytesTotal: Counter<'direction'>
  backendSessions: Gauge<'backend'>
  backendChoices: Counter<'backend'>
  backendConnectFailures: Counter<'backend'>
  errorsTotal: Counter<'code'>
  legsTotal: Counter<'leg' | 'transport'>
  unpairedLegs: Gauge
  rtspRequestsTotal: Counter<'method'>
  gatewayResponsesTotal: Counter<'status'>
  /** A configured limit was reached (label = the setting's key, e.g. limits.maxTunnelsPerIp). */
  limitHitsTotal: Counter<'limit'>
  /** Whole `$` frames dropped for a lagging client (limits.dropFramesAboveBytes). */
  framesDroppedTotal: Counter
  webRequestsTotal: Counter<'route' | 'status'>
  /** Balancer: the load figures used, scrape errors, backend health and bandwidth. */
  balancerBackendLoad: Gauge<'backend' | 'source'>
  balancerScrapeErrors: Counter<'target'>
  backendUp: Gauge<'backend'>
  backendProbeSeconds: Histogram<'backend'>
  backendBandwidth: Gauge<'backend'>
  backendBytes: Counter<'backend'>
  /** Faults contained in one session or connection (TG_ERR_INTERNAL), by entry point (src/core/containment.ts). */
  faultsTotal: Counter<'where'>
  /** At a relay node: legs and cluster reads refused for want of a valid portal proof, by reason. */
  relayUntrusted: Counter<'reason'>
}

export function createMetrics (opts: { defaultMetrics?: boolean, prefix?: string } = {}): GatewayMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tunnelgate_' })
  const registers = [registry]
  const m: GatewayMetrics = {
    registry,
    tunnelsActive: new Gauge({
      name: 'tunnelgate_tunnels_active', help: 'Tunnels (client sessions) currently open', registers
    }),
    tunnelsTotal: new Counter({
      name: 'tunnelgate_tunnels_total',
      help: 'Tunnels closed, by outcome and transport (http-tunnel, websocket, rtsp)',
      labelNames: ['outcome', 'transport'],
      registers
    }),
    tunnelSetupSeconds: new Histogram({
      name: 'tunnelgate_tunnel_setup_seconds',
      help: 'Time from the tunnel GET to the first byte from the backend',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    }),
    bytesTotal: new Counter({
      name: 'tunnelgate_bytes_total',
      help: 'Bytes relayed, by direction (client_to_backend, backend_to_client)',
      labelNames: ['direction'],
      registers
    }),
    backendSessions: new Gauge({
      name: 'tunnelgate_backend_sessions',
      help: 'Backend connections open, by backend',
      labelNames: ['backend'],
      registers
    }),
    backendChoices: new Counter({
      name: 'tunnelgate_backend_choices_total',
      help: 'Sessions the balancer sent to each backend',
      labelNames: ['backend'],
      registers
    }),
    backendConnectFailures: new Counter({
      name: 'tunnelgate_backend_connect_failures_total',
      help: 'Failed backend connection attempts',
      labelNames: ['backend'],
      registers
    }),
    errorsTotal: new Counter({
      name: 'tunnelgate_errors_total',
      help: 'Errors by code (TG_ERR_*, see docs/errors.md)',
      labelNames: ['code'],
      registers
    }),
    legsTotal: new Counter({
      name: 'tunnelgate_legs_total',
      help: 'Tunnel legs accepted, by kind (get, post, rtsp, websocket) and transport (http-tunnel, websocket, rtsp)',
      labelNames: ['leg', 'transport'],
      registers
    }),
    unpairedLegs: new Gauge({ name: 'tunnelgate_unpaired_legs', help: 'Legs waiting for their other half', registers }),
    rtspRequestsTotal: new Counter({
      name: 'tunnelgate_rtsp_requests_total',
      help: 'RTSP requests from clients, by method',
      labelNames: ['method'],
      registers
    }),
    gatewayResponsesTotal: new Counter({
      name: 'tunnelgate_gateway_responses_total',
      help: 'RTSP responses the gateway originated itself, by status',
      labelNames: ['status'],
      registers
    }),
    limitHitsTotal: new Counter({
      name: 'tunnelgate_limit_hits_total',
      help: 'Times a configured limit was reached, by setting (see docs/security.md)',
      labelNames: ['limit'],
      registers
    }),
    framesDroppedTotal: new Counter({
      name: 'tunnelgate_frames_dropped_total',
      help: 'Whole $ frames dropped towards lagging clients (limits.dropFramesAboveBytes)',
      registers
    }),
    webRequestsTotal: new Counter({
      name: 'tunnelgate_web_requests_total',
      help: 'Requests to the web surface, by route and status',
      labelNames: ['route', 'status'],
      registers
    }),
    balancerBackendLoad: new Gauge({
      name: 'tunnelgate_balancer_backend_load',
      help: 'Sessions per backend the balancer last used, by source (cluster, backend, promql, local)',
      labelNames: ['backend', 'source'],
      aggregator: 'average',
      registers
    }),
    balancerScrapeErrors: new Counter({
      name: 'tunnelgate_balancer_scrape_errors_total',
      help: 'Failed load scrapes, by target',
      labelNames: ['target'],
      registers
    }),
    backendUp: new Gauge({
      name: 'tunnelgate_backend_up',
      help: 'Backend health as this relay sees it (1 chosen, 0 out: failed probes or connections)',
      labelNames: ['backend'],
      aggregator: 'min',
      registers
    }),
    backendProbeSeconds: new Histogram({
      name: 'tunnelgate_backend_probe_seconds',
      help: 'Duration of RTSP OPTIONS health probes (failed ones included)',
      labelNames: ['backend'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers
    }),
    backendBandwidth: new Gauge({
      name: 'tunnelgate_backend_bandwidth_bits',
      help: 'Bits/s received from each backend by this relay (last second)',
      labelNames: ['backend'],
      registers
    }),
    backendBytes: new Counter({
      name: 'tunnelgate_backend_bytes_total',
      help: 'Bytes received from each backend',
      labelNames: ['backend'],
      registers
    }),
    faultsTotal: new Counter({
      name: 'tunnelgate_faults_total',
      help: 'Faults inside the gateway contained in one session or connection (TG_ERR_INTERNAL), by entry point',
      labelNames: ['where'],
      registers
    }),
    relayUntrusted: new Counter({
      name: 'tunnelgate_relay_untrusted_total',
      help: 'Legs and cluster reads a relay node refused for want of a valid portal proof, by reason (missing, ' +
        'malformed, bad-signature, stale, replayed, mismatch, nonces-full)',
      labelNames: ['reason'],
      registers
    })
  }
  // Counted per read, per request or per tunnel: no label hashing on the hot path.
  for (const c of [
    m.bytesTotal, m.backendBytes, m.errorsTotal, m.rtspRequestsTotal, m.legsTotal, m.tunnelsTotal,
    m.gatewayResponsesTotal, m.limitHitsTotal, m.backendChoices
  ]) { deferIncrements(c as Counter<string>) }
  return m
}

/**
 * Make `counter.inc(labels, n)` cheap: prom-client hashes and validates the label object on every
 * call (measurable per `$` read and per setup, see bench/src/micro.ts). Increments go to a plain
 * number per label set instead, added to the counter whenever it is read (its `collect`, which
 * prom-client runs on every scrape, get() or registry dump), so every reader sees the same values
 * as before. The first increment of each label set (so unknown label names throw as before) and any
 * value prom-client would refuse (negative, not finite) go through prom-client's own inc.
 */
function deferIncrements<T extends string> (counter: Counter<T>): void {
  const original = counter.inc as (...a: unknown[]) => void
  const direct = (labels: LabelValues<T>, value?: number): void => { original.call(counter, labels, value) }
  const names = (counter as unknown as { labelNames: T[] }).labelNames
  const cells = new Map<string, { labels: LabelValues<T>, n: number }>()
  const keyOf = (labels: LabelValues<T>): string | null => {
    if (names.length === 1) { const v = labels[names[0]!]; return typeof v === 'string' ? v : null }
    let key = ''
    for (const name of names) {
      const v = labels[name]
      if (typeof v !== 'string') return null
      key += v.length + ':' + v
    }
    return key
  }
  const flush = (): void => {
    for (const cell of cells.values()) {
      if (cell.n === 0) continue
      const n = cell.n
      cell.n = 0
      direct(cell.labels, n)
    }
  }
  function inc (this: unknown, labels?: LabelValues<T> | number, value?: number): void {
    if (labels === null || typeof labels !== 'object' ||
        (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0))) {
      original.apply(counter, arguments as unknown as unknown[])
      return
    }
    const key = keyOf(labels)
    const cell = key === null ? undefined : cells.get(key)
    if (cell === undefined) {
      direct(labels, value) // validates the labels (throws on unknown ones), like before
      if (key !== null && Object.keys(labels).length === names.length) cells.set(key, { labels: { ...labels }, n: 0 })
      return
    }
    cell.n += value ?? 1
  }
  const reset = counter.reset.bind(counter)
  const remove = counter.remove.bind(counter)
  Object.assign(counter, {
    inc,
    collect: flush,
    reset: () => { for (const cell of cells.values()) cell.n = 0; reset() },
    remove: (...labels: unknown[]) => { flush(); (remove as (...a: unknown[]) => void)(...labels) }
  })
}

/** A counter's values summed by its `code` label (tunnelgate_errors_total), without rendering a registry. */
export async function countsByCode (counter: Counter<'code'>): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const v of (await counter.get()).values) {
    const code = v.labels.code
    if (typeof code === 'string') out[code] = (out[code] ?? 0) + v.value
  }
  return out
}

/** Add `from`'s counts to `into` (by key). */
export function addCounts (into: Record<string, number>, from: Record<string, number> | null | undefined): void {
  if (from === null || from === undefined) return
  for (const [k, v] of Object.entries(from)) if (typeof v === 'number') into[k] = (into[k] ?? 0) + v
}

const KNOWN_METHODS = new Set(
  [
    'OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'ANNOUNCE', 'RECORD',
    'REDIRECT'
  ]
)
/** Keep the method label bounded: unknown methods are counted as 'other'. */
export function methodLabel (method: string): string { return KNOWN_METHODS.has(method) ? method : 'other' }

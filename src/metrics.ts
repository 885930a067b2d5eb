/**
 * Gateway metrics (prom-client, one Registry per process, passed in — never the global default).
 * Names and labels mirror docs/metrics.md; labels stay low-cardinality (no cookies, no session ids).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

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
  /** Balancer (issue 4): the load figures used, scrape errors, backend health and bandwidth. */
  balancerBackendLoad: Gauge<'backend' | 'source'>
  balancerScrapeErrors: Counter<'target'>
  backendUp: Gauge<'backend'>
  backendProbeSeconds: Histogram<'backend'>
  backendBandwidth: Gauge<'backend'>
  backendBytes: Counter<'backend'>
}

export function createMetrics (opts: { defaultMetrics?: boolean, prefix?: string } = {}): GatewayMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tunnelgate_process_' })
  const registers = [registry]
  return {
    registry,
    tunnelsActive: new Gauge({ name: 'tunnelgate_tunnels_active', help: 'Tunnels (client sessions) currently open', registers }),
    tunnelsTotal: new Counter({ name: 'tunnelgate_tunnels_total', help: 'Tunnels closed, by outcome and transport (http-tunnel, websocket, rtsp)', labelNames: ['outcome', 'transport'], registers }),
    tunnelSetupSeconds: new Histogram({
      name: 'tunnelgate_tunnel_setup_seconds',
      help: 'Time from the tunnel GET to the first byte from the backend',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    }),
    bytesTotal: new Counter({ name: 'tunnelgate_bytes_total', help: 'Bytes relayed, by direction (client_to_backend, backend_to_client)', labelNames: ['direction'], registers }),
    backendSessions: new Gauge({ name: 'tunnelgate_backend_sessions', help: 'Backend connections open, by backend', labelNames: ['backend'], registers }),
    backendChoices: new Counter({ name: 'tunnelgate_backend_choices_total', help: 'Sessions the balancer sent to each backend', labelNames: ['backend'], registers }),
    backendConnectFailures: new Counter({ name: 'tunnelgate_backend_connect_failures_total', help: 'Failed backend connection attempts', labelNames: ['backend'], registers }),
    errorsTotal: new Counter({ name: 'tunnelgate_errors_total', help: 'Errors by code (TG_ERR_*, see docs/errors.md)', labelNames: ['code'], registers }),
    legsTotal: new Counter({ name: 'tunnelgate_legs_total', help: 'Tunnel legs accepted, by kind (get, post, rtsp, websocket) and transport (http-tunnel, websocket, rtsp)', labelNames: ['leg', 'transport'], registers }),
    unpairedLegs: new Gauge({ name: 'tunnelgate_unpaired_legs', help: 'Legs waiting for their other half', registers }),
    rtspRequestsTotal: new Counter({ name: 'tunnelgate_rtsp_requests_total', help: 'RTSP requests from clients, by method', labelNames: ['method'], registers }),
    gatewayResponsesTotal: new Counter({ name: 'tunnelgate_gateway_responses_total', help: 'RTSP responses the gateway originated itself, by status', labelNames: ['status'], registers }),
    limitHitsTotal: new Counter({ name: 'tunnelgate_limit_hits_total', help: 'Times a configured limit was reached, by setting (see docs/security.md)', labelNames: ['limit'], registers }),
    framesDroppedTotal: new Counter({ name: 'tunnelgate_frames_dropped_total', help: 'Whole $ frames dropped towards lagging clients (limits.dropFramesAboveBytes)', registers }),
    webRequestsTotal: new Counter({ name: 'tunnelgate_web_requests_total', help: 'Requests to the web surface, by route and status', labelNames: ['route', 'status'], registers }),
    balancerBackendLoad: new Gauge({ name: 'tunnelgate_balancer_backend_load', help: 'Sessions per backend the balancer last used, by source (cluster, backend, promql, local)', labelNames: ['backend', 'source'], aggregator: 'average', registers }),
    balancerScrapeErrors: new Counter({ name: 'tunnelgate_balancer_scrape_errors_total', help: 'Failed load scrapes, by target', labelNames: ['target'], registers }),
    backendUp: new Gauge({ name: 'tunnelgate_backend_up', help: 'Backend health as this relay sees it (1 chosen, 0 out: failed probes or connections)', labelNames: ['backend'], aggregator: 'min', registers }),
    backendProbeSeconds: new Histogram({ name: 'tunnelgate_backend_probe_seconds', help: 'Duration of RTSP OPTIONS health probes (failed ones included)', labelNames: ['backend'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers }),
    backendBandwidth: new Gauge({ name: 'tunnelgate_backend_bandwidth_bits', help: 'Bits/s received from each backend by this relay (last second)', labelNames: ['backend'], registers }),
    backendBytes: new Counter({ name: 'tunnelgate_backend_bytes_total', help: 'Bytes received from each backend', labelNames: ['backend'], registers })
  }
}

const KNOWN_METHODS = new Set(['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'ANNOUNCE', 'RECORD', 'REDIRECT'])
/** Keep the method label bounded: unknown methods are counted as 'other'. */
export function methodLabel (method: string): string { return KNOWN_METHODS.has(method) ? method : 'other' }

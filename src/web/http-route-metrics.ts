/** The Prometheus metrics of the HTTP routes (docs/metrics.md), registered once per registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface HttpRouteMetrics {
  requests: Counter<'transport' | 'route' | 'backend' | 'status'>
  bytes: Counter<'transport' | 'route' | 'direction'>
  upstreamErrors: Counter<'transport' | 'route' | 'backend' | 'kind'>
  inFlight: Gauge<'transport' | 'route'>
  viewers: Gauge<'transport' | 'backend'>
  backendUp: Gauge<'backend'>
  probeSeconds: Histogram<'backend'>
}

const metricsByRegistry = new WeakMap<Registry, HttpRouteMetrics>()

/** The HTTP-route metrics, registered once per registry. */
export function httpRouteMetrics (registry: Registry): HttpRouteMetrics {
  const had = metricsByRegistry.get(registry)
  if (had !== undefined) return had
  const registers = [registry]
  const m: HttpRouteMetrics = {
    requests: new Counter({
      name: 'tunnelgate_http_requests_total',
      help: 'Requests on HTTP routes, by route, backend (none = answered by the portal) and status',
      labelNames: ['transport', 'route', 'backend', 'status'],
      registers
    }),
    bytes: new Counter({
      name: 'tunnelgate_http_bytes_total',
      help: 'Body bytes relayed on HTTP routes, by route and direction (client_to_backend, backend_to_client)',
      labelNames: ['transport', 'route', 'direction'],
      registers
    }),
    upstreamErrors: new Counter({
      name: 'tunnelgate_http_upstream_errors_total',
      help: 'Failed upstream requests on HTTP routes, by route, backend and kind ' +
        '(refused, timeout, reset, aborted, other)',
      labelNames: ['transport', 'route', 'backend', 'kind'],
      registers
    }),
    inFlight: new Gauge({
      name: 'tunnelgate_http_in_flight',
      help: 'Requests on HTTP routes being answered now, by route',
      labelNames: ['transport', 'route'],
      registers
    }),
    viewers: new Gauge({
      name: 'tunnelgate_http_viewers',
      help: 'HTTP viewers (affinity keys seen within httpProxy.viewerIdleMs) per backend',
      labelNames: ['transport', 'backend'],
      registers
    }),
    backendUp: new Gauge({
      name: 'tunnelgate_http_backend_up',
      help: 'HTTP route backend in the choice (1) or out of it ' +
        '(0: failed its health probes, or cooling down after a refused/timed-out request)',
      labelNames: ['backend'],
      registers
    }),
    probeSeconds: new Histogram({
      name: 'tunnelgate_http_backend_probe_seconds',
      help: 'Duration of HTTP backend health probes (GET of healthPath up to the answer head)',
      labelNames: ['backend'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2],
      registers
    })
  }
  metricsByRegistry.set(registry, m)
  return m
}

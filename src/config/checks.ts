/**
 * The rules the schema cannot state, run on a schema-valid config: one setting against another (cookie
 * lengths, routes naming backends, secrets and tokens a role or an address requires), and values that
 * must parse (URLs, CIDR blocks). They also normalise backends and HTTP routes.
 */
import type { Static } from '@sinclair/typebox'
import { parseCidr } from '../tunnel/codec/access.js'
import { checkHttpProxy, checkHttpRoutes } from './http-routes.js'
import { fail } from './refuse.js'
import { checkHttpUrl, normaliseBackends } from './rtsp-backends.js'
import { CLUSTER_SECRET_MIN, OPS_TOKEN_MIN, type Config, type ConfigSchema } from './schema.js'

/** A loopback listen address: reachable from this machine only. */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

export function checkConfig (c: Static<typeof ConfigSchema>): Config {
  const notBelow = (key: string, value: number, floorKey: string, floor: number): void => {
    if (value < floor) fail(key, `must not be below ${floorKey}`)
  }
  notBelow('limits.maxCookieLength', c.limits.maxCookieLength, 'limits.minCookieLength', c.limits.minCookieLength)
  notBelow('auth.backoffMaxMs', c.auth.backoffMaxMs, 'auth.backoffMs', c.auth.backoffMs)
  notBelow('live.reconnectMaxMs', c.live.reconnectMaxMs, 'live.reconnectMinMs', c.live.reconnectMinMs)
  const backends = normaliseBackends(c.backends)
  const names = new Set(backends.map(b => b.name))
  for (const [i, r] of c.routes.entries()) {
    for (const [j, n] of r.backends.entries()) {
      if (names.has(n) || backends.length === 0) continue
      fail(`routes[${i}].backends[${j}]`, `names no configured backend ('${n}')`)
    }
  }
  for (const k of ['allow', 'deny'] as const) {
    for (const [i, e] of c.access[k].entries()) {
      try { parseCidr(e) } catch (err) { fail(`access.${k}[${i}]`, (err as Error).message) }
    }
  }
  checkCluster(c)
  checkHttpUrl(c.balancer.promql.url, 'balancer.promql.url')
  if (c.balancer.promql.url !== '' && c.balancer.promql.query.trim() === '') {
    fail('balancer.promql.query', 'must be set when balancer.promql.url is')
  }
  if ((c.tls.cert === '') !== (c.tls.key === '')) {
    const [unset, set] = c.tls.cert === '' ? ['tls.cert', 'tls.key'] : ['tls.key', 'tls.cert']
    fail(unset, `must be set together with ${set}`)
  }
  if (c.ops.token === '' && !isLoopbackHost(c.ops.host)) {
    fail('ops.token', `must be set (${OPS_TOKEN_MIN} characters or more) when ops.host is not loopback ` +
      `(got host '${c.ops.host}')`)
  }
  const httpRoutes = checkHttpRoutes(c.httpRoutes, backends.map(b => b.name))
  checkHttpProxy(c.httpProxy)
  return { ...c, backends, httpRoutes }
}

function checkCluster (c: Static<typeof ConfigSchema>): void {
  if (c.role === 'portal' && c.cluster.relays.length === 0) {
    fail('cluster.relays', 'must name at least one relay for the portal role (--relay H:P or --relays dns:NAME:PORT)')
  }
  const needsSecret = c.role === 'portal' || c.role === 'relay'
    ? `role ${c.role}`
    : c.cluster.peers.length > 0 ? 'cluster.peers' : null
  if (c.cluster.secret === '' && needsSecret !== null) {
    fail('cluster.secret', `must be set (${CLUSTER_SECRET_MIN}+ characters, the same on every portal and relay node; ` +
      `TUNNELGATE_CLUSTER_SECRET) for ${needsSecret}: relay nodes believe only what a portal signs`)
  }
}

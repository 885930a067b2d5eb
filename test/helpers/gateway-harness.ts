/**
 * Start a gateway (in process, ephemeral port, silent logs) for integration tests, read its
 * metrics, and check that a test left nothing behind (no tunnel open, backend connections closed).
 */
import type { Gateway } from '../../src/gateway.js'
import { startGateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import type { ScriptedBackend } from './scripted-backend.js'

type Obj = Record<string, unknown>

export interface TestContext {
  teardown (fn: () => void | Promise<void>): void
}

/** The cluster secret test portals and relay nodes share (unless a layer names its own). */
export const TEST_CLUSTER_SECRET = 'test-cluster-secret-0123456789'

/** `layer` with cluster.secret set when its role or peers need one and it has none. */
export function withClusterSecret (layer: Obj): Obj {
  const cluster = (layer.cluster ?? {}) as Obj
  const needs =
    layer.role === 'portal' || layer.role === 'relay' || (Array.isArray(cluster.peers) && cluster.peers.length > 0)
  return needs && cluster.secret === undefined
    ? { ...layer, cluster: { ...cluster, secret: TEST_CLUSTER_SECRET } }
    : layer
}

/** A backend entry: a URL, a named URL, or a scripted backend. */
export type TestBackend = ScriptedBackend | string | { name: string, url: string }

/** A gateway in front of `backends`; `layer` overrides settings; closed at `t`'s teardown. */
export async function startTestGateway (t: TestContext, backends: TestBackend[], layer: Obj = {}): Promise<Gateway> {
  const base: Obj = {
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    // Any free port for the ops listener: tests run gateways side by side.
    ops: { port: 0 },
    backend: { probeIntervalMs: 0 },
    backends: backends.map(b => typeof b === 'string' || 'name' in b ? b : b.url),
    tunnel: { pairingTimeoutMs: 2000 }
  }
  const merged: Obj = withClusterSecret({ ...base, ...layer })
  for (const k of ['tunnel', 'limits', 'backend', 'ops']) {
    if (layer[k] !== undefined) merged[k] = { ...(base[k] as Obj | undefined ?? {}), ...(layer[k] as Obj) }
  }
  const gw = await startGateway(buildConfig([merged]))
  t.teardown(async () => { await gw.close() })
  return gw
}

/** Sum of a metric's values whose labels include `labels` (0 when absent). */
export async function metric (gw: Gateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric(name)
  if (m === undefined) throw new Error(`no metric ${name}`)
  const got = await m.get()
  let sum = 0
  for (const v of got.values) {
    if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) {
      sum += v.value
    }
  }
  return sum
}

export async function errorCount (gw: Gateway, code: string): Promise<number> {
  return await metric(gw, 'tunnelgate_errors_total', { code })
}

/** Wait until no tunnel is open, no leg waits, and every backend connection is closed. */
export async function settled (gw: Gateway, backends: ScriptedBackend[] = [], timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const active = await metric(gw, 'tunnelgate_tunnels_active')
    const unpaired = await metric(gw, 'tunnelgate_unpaired_legs')
    const open = backends.reduce((n, b) => n + b.conns.filter(c => !c.closed).length, 0)
    if (active === 0 && unpaired === 0 && open === 0 && gw.relay.activeSessions === 0) return
    if (Date.now() > deadline) {
      throw new Error(
        `not settled after ${timeoutMs} ms: tunnels_active=${active} unpaired=${unpaired} backend connections open=${
          open}`
      )
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

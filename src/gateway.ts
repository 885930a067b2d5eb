/**
 * Assembles a gateway in one process: metrics, relay (cookie registry + sessions + backend pool),
 * the Fastify web surface and the port-80 front door. Used by main.ts and by the tests.
 */
import type net from 'node:net'
import os from 'node:os'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from './config/config.js'
import { TunnelgateError } from './core/errors.js'
import { createMetrics, type GatewayMetrics } from './core/metrics.js'
import { createFrontDoor } from './door/front-door.js'
import { buildWeb, type StatusSource } from './web/web.js'
import { HttpRoutes } from './web/http-routes.js'
import { Relay } from './route/relay.js'
import { WorkerPool } from './route/workers.js'
import { RemoteRelays } from './route/remote-relays.js'
import { createTlsFrontDoor, loadTlsContext } from './door/tls-door.js'
import { createOpsSurface, type OpsSurface } from './ops/surface.js'
import { startBalancing, type Balancing } from './backends/balancing.js'
import { createLogger } from './core/logger.js'
import { ForwardTrust } from './door/forward-trust.js'
import { ForwardSigner } from './core/forward-signer.js'
import { registerClusterReads } from './web/cluster-reads.js'

export interface Gateway {
  port: number
  host: string
  /** The TLS listen port (tls.cert/tls.key set), else null. */
  tlsPort: number | null
  metrics: GatewayMetrics
  /** The in-process relay (used when workers = 0). */
  relay: Relay
  workers: WorkerPool | null
  remote: RemoteRelays | null
  logger: Logger
  /** Operator surface: control (admin API), status feed, access log, the ops listener. */
  ops: OpsSurface
  /** Port of the ops listener (metrics, status page, admin API when admin.enabled). */
  opsPort: number
  /** Reload the config from its sources without dropping tunnels (SIGHUP, POST /admin/reload). */
  reload (): ReturnType<OpsSurface['operator']['reload']>
  /** Health probes and load scrapes of the relay in this process (null on a portal). */
  balancing: Balancing | null
  /**
   * Drain (a relay node on SIGTERM, or the operator API): /healthz says `draining`, so portals send
   * this relay no new tunnels, while its tunnels go on; resolves when none is left or after `timeoutMs`.
   */
  drain (timeoutMs: number): Promise<void>
  close (graceMs?: number): Promise<void>
}

export async function startGateway (
  config: Config, opts: { logger?: Logger, loadConfig?: () => Config } = {}
): Promise<Gateway> {
  const logger = opts.logger ?? createLogger(config.logLevel)
  // Unusable TLS files stop the start before anything listens (TG_ERR_TLS_CONFIG).
  const tlsContext = config.tls.cert === '' ? null : loadTlsContext(config.tls)
  const metrics = createMetrics()
  const relay = new Relay(config, metrics, logger)
  let workers: WorkerPool | null = null
  let remote: RemoteRelays | null = null
  if (config.role === 'portal') {
    remote = new RemoteRelays(
      {
        signer: new ForwardSigner(config.cluster.secret),
        basicUsers: config.auth.basic.length > 0,
        relays: config.cluster.relays,
        probeIntervalMs: config.cluster.probeIntervalMs,
        dnsIntervalMs: config.cluster.dnsIntervalMs,
        connectTimeoutMs: config.cluster.connectTimeoutMs,
        postAskRelays: config.cluster.postAskRelays,
        limits: config.limits,
        pairingTimeoutMs: config.tunnel.pairingTimeoutMs,
        readBufferBytes: config.backend.readBufferBytes
      },
      metrics, logger
    )
    await remote.start()
  } else if (workerCount(config) > 0) {
    workers = new WorkerPool(config, metrics, logger)
    await workers.start(workerCount(config))
  }
  const pool = workers
  const ops = createOpsSurface({ config, relay, workers, remote, metrics, logger, loadConfig: opts.loadConfig })
  const balancing = config.role === 'portal'
    ? null
    : startBalancing({
      config, pool: relay.pool, metrics, logger, scrape: true, probe: true, instanceId: randomUUID(), workers: pool
    })
  let draining = false
  // HTTP backends tied to an RTSP backend (httpRoutes[].backends[].rtspBackend): its sessions as the
  // balancer sees them. With local workers the sessions are theirs: summed every balancer.scrapeIntervalMs.
  const workerSessions = new Map<string, number>()
  const tied = config.httpRoutes.some(r => r.backends.some(b => b.rtspBackend !== ''))
  let workerSum: NodeJS.Timeout | null = null
  if (tied && pool !== null) {
    const refresh = (): void => {
      void pool.status().then(ws => {
        workerSessions.clear()
        for (const w of ws) {
          for (const b of w.backends) workerSessions.set(b.name, (workerSessions.get(b.name) ?? 0) + b.sessions)
        }
      }).catch(err => { logger.warn({ err }, 'worker session sums for HTTP routes failed') })
    }
    workerSum = setInterval(refresh, config.balancer.scrapeIntervalMs)
    workerSum.unref()
    refresh()
  }
  const rtspLoad = (name: string): number | null => {
    if (config.role === 'portal') return null // the RTSP figures live on the relay nodes
    const s = relay.pool.get(name)
    if (s === undefined) return null
    const l = relay.pool.loadOf(s)
    // Backend / PromQL figures already count every relay and worker; the others add the local workers.
    return l.source === 'backend' || l.source === 'promql' ? l.sessions : l.sessions + (workerSessions.get(name) ?? 0)
  }
  const httpRoutes = config.httpRoutes.length > 0 ? new HttpRoutes(config, metrics, logger, { rtspLoad }) : null
  const source: StatusSource = {
    metricsText: async () => pool === null ? await metrics.registry.metrics() : await pool.metricsText(metrics),
    status: async () => {
      const local = relay.pool.all().map(
        b => ({
          name: b.config.name,
          url: b.config.url,
          sessions: b.sessions,
          maxSessions: b.config.maxSessions,
          healthy: relay.pool.isHealthy(b)
        })
      )
      if (pool === null) return { tunnels: relay.activeSessions, unpairedLegs: relay.pendingPostCount, backends: local }
      const ws = await pool.status()
      for (const b of local) {
        b.sessions = 0
        for (const w of ws) {
          for (const wb of w.backends) if (wb.name === b.name) { b.sessions += wb.sessions; b.healthy &&= wb.healthy }
        }
      }
      return {
        tunnels: ws.reduce((n, w) => n + w.tunnels, 0),
        unpairedLegs: ws.reduce((n, w) => n + w.unpairedLegs, 0),
        backends: local
      }
    },
    ready: () => remote !== null
      ? remote.relays().some(r => r.up)
      : relay.pool.all().some(b => relay.pool.isHealthy(b)),
    draining: () => draining
  }
  // Cluster members prove what they send each other with cluster.secret (docs/scaling.md, "Trust").
  const trust = config.cluster.secret === ''
    ? null
    : new ForwardTrust(
      {
        secrets: [config.cluster.secret, ...config.cluster.acceptSecrets],
        maxClockSkewMs: config.cluster.maxClockSkewMs,
        maxNonces: config.cluster.maxNonces
      },
      metrics, logger
    )
  const forward = config.role === 'relay' ? trust : null
  const web = await buildWeb({
    metrics,
    logger,
    config,
    source,
    httpRoutes,
    watch: { config, streams: () => config.watch.streams },
    ...(trust === null
      ? {}
      : {
          extend: app => registerClusterReads(app, {
            trust,
            source,
            summaries: async () => await ops.operator.summaries(),
            contentType: metrics.registry.contentType
          })
        })
  })
  const door = createFrontDoor({ config, metrics, logger, legs: remote ?? pool ?? relay, web: web.server, forward })
  await listen(door, config.port, config.host).catch(async err => { await ops.close(); throw err })
  const addr = door.address() as net.AddressInfo
  const opsPort = await ops.start(async (s, p, h) => await listen(s, p, h, '--ops-port'), {
    source, httpRoutes, watchPort: () => config.watch.enabled ? addr.port : null
  }).catch(async err => {
    door.close()
    await ops.close()
    throw err
  })
  // TLS: the same front door behind tls.Server; its legs stay in this process (a TLS socket cannot be handed over).
  const tlsDoor = tlsContext === null
    ? null
    : createTlsFrontDoor({ config, metrics, logger, legs: remote ?? relay, web: web.server, forward }, tlsContext)
  if (tlsDoor !== null) {
    try { await listen(tlsDoor, config.tls.port, config.host) } catch (err) { door.close(); throw err }
    logger.info(
      { event: 'listening', host: config.host, port: (tlsDoor.address() as net.AddressInfo).port, tls: true },
      `tunnelgate listening with TLS on ${config.host}:${(tlsDoor.address() as net.AddressInfo).port}`
    )
  }
  logger.info(
    { event: 'listening', host: config.host, port: addr.port, backends: config.backends.map(b => b.url) },
    `tunnelgate listening on ${config.host}:${addr.port}`
  )
  return {
    port: addr.port,
    host: config.host,
    tlsPort: tlsDoor === null ? null : (tlsDoor.address() as net.AddressInfo).port,
    metrics,
    relay,
    workers: pool,
    remote,
    logger,
    ops,
    opsPort,
    reload: async () => await ops.operator.reload(),
    balancing,
    async drain (timeoutMs: number) {
      draining = true
      relay.draining = true
      logger.info({ event: 'draining', timeoutMs }, 'draining: no new tunnels; waiting for the open ones to end')
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const open = pool === null ? relay.activeSessions : (await pool.status()).reduce((n, w) => n + w.tunnels, 0)
        if (open === 0 || Date.now() >= deadline) return
        await new Promise(resolve => setTimeout(resolve, Math.min(500, Math.max(1, deadline - Date.now()))))
      }
    },
    async close (graceMs = 0) {
      // Stop accepting first; net.Server.close() resolves only when every accepted connection has
      // ended, so the tunnels are closed before waiting for it.
      const doorClosed = new Promise<void>(resolve => door.close(() => resolve()))
      const tlsClosed = tlsDoor === null
        ? Promise.resolve()
        : new Promise<void>(resolve => tlsDoor.close(() => resolve()))
      await relay.close(graceMs)
      if (pool !== null) await pool.close(graceMs)
      if (remote !== null) await remote.close()
      if (balancing !== null) await balancing.close()
      if (workerSum !== null) clearInterval(workerSum)
      await ops.close()
      await web.close()
      await doorClosed
      await tlsClosed
    }
  }
}

/** Local relay workers to start: 'auto' = one per CPU core in the all-in-one, none on a relay node. */
export function workerCount (config: Config): number {
  if (config.workers !== 'auto') return config.workers
  return config.role === 'all-in-one' ? os.availableParallelism() : 0
}

/** listen() with a clear, coded error instead of a stack trace. */
export function listen (server: net.Server, port: number, host: string, flag = '--port'): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why = err.code === 'EADDRINUSE'
        ? `port ${port} on ${host} is already in use (another server is listening there; choose another with ${flag})`
        : err.code === 'EACCES'
          ? `no permission to listen on port ${port} (ports below 1024 need root or CAP_NET_BIND_SERVICE; try --port ` +
            '8080)'
          : `cannot listen on ${host}:${port}: ${err.message}`
      reject(new TunnelgateError('TG_ERR_LISTEN', why, { port, host, errno: err.code }))
    }
    server.once('error', onError)
    server.listen(port, host, () => { server.removeListener('error', onError); resolve() })
  })
}

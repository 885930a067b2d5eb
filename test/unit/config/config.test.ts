import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildConfig, DEFAULTS, envOverrides, loadConfigFile } from '../../../src/config/config.js'
import { parseCli } from '../../../src/cli.js'
import { TunnelgateError } from '../../../src/core/errors.js'

const bad: Array<[string, Record<string, unknown>, string]> = [
  ['unknown top-level key', { prot: 80 }, "config: 'prot' is not a known setting"],
  ['unknown nested key', { limits: { httpHeadByte: 1 } }, "config: 'limits.httpHeadByte' is not a known setting"],
  ['port out of range', { port: 70000 }, "config: 'port' must be between 0 and 65535 (got 70000)"],
  ['port not a number', { port: '80' }, "config: 'port' must be an integer (got \"80\")"],
  ['backend not rtsp', { backends: ['http://x:1'] },
    "config: 'backends[0].url' must be an rtsp:// URL (got 'http://x:1')"],
  ['backend with a path', { backends: ['rtsp://x:1/a'] },
    "config: 'backends[0].url' must not have a path (routes map paths): 'rtsp://x:1/a'"],
  ['backend unknown key', { backends: [{ url: 'rtsp://x:1', weigth: 2 }] },
    "config: 'backends[0].weigth' is not a known setting"],
  ['duplicate backend names', { backends: ['rtsp://x:1', 'rtsp://x:1'] },
    "config: 'backends[1].name' duplicates the name 'x:1'"],
  ['route names unknown backend',
    { backends: [{ name: 'a', url: 'rtsp://x:1' }], routes: [{ path: '/', backends: ['b'] }] },
    "config: 'routes[0].backends[0]' names no configured backend ('b')"],
  ['route path relative', { routes: [{ path: 'x' }] }, "config: 'routes[0].path' must be a path starting with '/'"],
  ['empty routes', { routes: [] }, "config: 'routes' must be a non-empty list"],
  ['bad getUpstream', { tunnel: { getUpstream: 'eat' } }, "config: 'tunnel.getUpstream' must be 'forward' or 'drop'"],
  ['cookie bounds', { limits: { minCookieLength: 10, maxCookieLength: 5 } },
    "config: 'limits.maxCookieLength' must not be below limits.minCookieLength"],
  ['portal without relays', { role: 'portal' },
    "config: 'cluster.relays' must name at least one relay for the portal role " +
      '(--relay H:P or --relays dns:NAME:PORT)'],
  ['bad relay spec', { cluster: { relays: ['nohost'] } },
    "config: 'cluster.relays' must be a list of host:port or dns:NAME:PORT"],
  ['bad log level', { logLevel: 'loud' },
    "config: 'logLevel' must be one of fatal, error, warn, info, debug, trace, silent (got 'loud')"],
  ['no verification allowed', { auth: { maxVerifications: 0 } },
    "config: 'auth.maxVerifications' must be between 1 and 1024 (got 0)"],
  ['back-off maximum below its start', { auth: { backoffMs: 5000, backoffMaxMs: 1000 } },
    "config: 'auth.backoffMaxMs' must not be below auth.backoffMs"],
  ['negative failure count', { auth: { maxFailuresPerUser: -1 } },
    "config: 'auth.maxFailuresPerUser' must be between 0 and 1000000 (got -1)"],
  ['grant cookie named like the affinity cookie', { httpProxy: { grantCookie: 'tg_http' } },
    "config: 'httpProxy.grantCookie' must differ from httpProxy.cookie"]
]

t.test('bad settings are refused with a message naming the key', async t => {
  for (const [name, layer, message] of bad) {
    try {
      buildConfig([layer])
      t.fail(`${name}: accepted`)
    } catch (err) {
      t.ok(TunnelgateError.is(err), `${name}: coded error`)
      t.equal((err as TunnelgateError).code, 'TG_ERR_CFG_INVALID')
      t.equal((err as Error).message, message, name)
    }
  }
})

t.test('defaults, normalisation and freezing', async t => {
  const c = buildConfig([{
    backends: ['rtsp://127.0.0.1:8554', { name: 'b', url: 'rtsp://[::1]', maxSessions: 3, weight: 2 }]
  }])
  t.equal(c.port, DEFAULTS.port)
  t.same(c.backends, [
    {
      name: '127.0.0.1:8554',
      url: 'rtsp://127.0.0.1:8554',
      maxSessions: 0,
      weight: 1,
      maxBandwidth: 0,
      metricsUrl: '',
      metricsSessions: 'tunnelgate_origin_sessions',
      metricsBytes: 'tunnelgate_origin_bytes_sent_total'
    },
    {
      name: 'b',
      url: 'rtsp://[::1]:554',
      maxSessions: 3,
      weight: 2,
      maxBandwidth: 0,
      metricsUrl: '',
      metricsSessions: 'tunnelgate_origin_sessions',
      metricsBytes: 'tunnelgate_origin_bytes_sent_total'
    }
  ])
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.limits) && Object.isFrozen(c.backends[0]))
  t.throws(() => { (c as { port: number }).port = 1 })
})

t.test('layers: file < env < command line', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cfg-'))
  const file = join(dir, 'c.yml')
  writeFileSync(file,
    'port: 8080\nhost: 127.0.0.1\nbackends:\n  - rtsp://10.0.0.1:554\ntunnel:\n  pairingTimeoutMs: 5000\n')
  const env = envOverrides({ PORT: '9090', TUNNELGATE_BACKENDS: 'rtsp://a:1, rtsp://b:2' })
  const cli = parseCli(['--port', '7070'])
  const c = buildConfig([loadConfigFile(file), env, cli.layer])
  t.equal(c.port, 7070)
  t.equal(c.host, '127.0.0.1')
  t.same(c.backends.map(b => b.url), ['rtsp://a:1', 'rtsp://b:2'])
  t.equal(c.tunnel.pairingTimeoutMs, 5000)
  writeFileSync(join(dir, 'bad.json'), '{ "port": ')
  t.throws(() => loadConfigFile(join(dir, 'bad.json')), /is not valid JSON/)
  t.throws(() => loadConfigFile(join(dir, 'missing.yml')), /cannot read/)
})

t.test('command line roles and flags', async t => {
  t.same(parseCli(['--backend', 'rtsp://a:1', '-b', 'rtsp://b:2', '--host', '::']).layer, {
    backends: ['rtsp://a:1', 'rtsp://b:2'],
    host: '::'
  })
  const portal = parseCli(['portal', '--port', '80', '--relay', '10.0.0.1:8081', '--relays', 'dns:relay:8081'])
  t.equal(portal.role, 'portal')
  t.same(portal.layer, { role: 'portal', cluster: { relays: ['10.0.0.1:8081', 'dns:relay:8081'] }, port: 80 })
  const relay = parseCli(['relay', '--port', '8081', '--backend', 'rtsp://o:8554'])
  t.same(relay.layer, { role: 'relay', port: 8081, backends: ['rtsp://o:8554'] })
  const origin = parseCli(['origin', '--port', '8554', '--media', '/m'])
  t.same(origin.origin, { port: 8554, host: '127.0.0.1', mediaDir: '/m' })
  t.throws(() => parseCli(['--port', 'eighty']), /--port must be a whole number/)
  t.throws(() => parseCli(['--bogus']), /Unknown option/)
  t.ok(parseCli(['--help']).help)
})

t.test('cluster.secret: required for portals, relay nodes and peers; 16+ characters; accepted secrets too', async t => {
  const secret = 'cluster-secret-0123456789'
  for (const [why,
    layer] of [['relay node', { role: 'relay' }], ['portal', { role: 'portal', cluster: { relays: ['r:1'] } }],
      ['cluster.peers', { cluster: { peers: ['a:1'] } }]] as const) {
    t.throws(() => buildConfig([layer]), { code: 'TG_ERR_CFG_INVALID', message: /'cluster\.secret' must be set/ },
      `${why}: no secret → refused`)
    t.equal(buildConfig([layer, { cluster: { secret } }]).cluster.secret, secret, `${why}: with one`)
  }
  t.equal(buildConfig([{}]).cluster.secret, '', 'an all-in-one needs none')
  t.throws(() => buildConfig([{ cluster: { secret: 'short' } }]), /'cluster\.secret' must be a string of at least 16/)
  t.throws(() => buildConfig([{ cluster: { secret, acceptSecrets: ['short'] } }]), /'cluster\.acceptSecrets\[0\]'/)
  t.throws(() => buildConfig([{ cluster: { maxClockSkewMs: 10 } }]), /cluster\.maxClockSkewMs/)
  t.throws(() => buildConfig([{ cluster: { maxNonces: 1 } }]), /cluster\.maxNonces/)
  let message = ''
  try {
    buildConfig([{ role: 'relay', cluster: { secret: 'short-secret' } }])
  } catch (err) { message = (err as Error).message }
  t.notMatch(message, /short-secret/, 'a refused secret is not repeated in the message')
})

t.test('every cluster flag has a config key and an environment variable', async t => {
  const cli = parseCli(['relay', '--peer', 'dns:relay:8081', '--peer', '10.0.0.2:8081', '--backend', 'rtsp://o:8554'])
  t.same(cli.layer.cluster, { peers: ['dns:relay:8081', '10.0.0.2:8081'] })
  const env = envOverrides({
    TUNNELGATE_PEERS: 'a:1, dns:b:2',
    TUNNELGATE_RELAYS: 'r:8081',
    TUNNELGATE_MEDIA: '/m',
    TUNNELGATE_TLS_PORT: '8443',
    TUNNELGATE_CLUSTER_SECRET: 'env-cluster-secret-0123',
    TUNNELGATE_CLUSTER_ACCEPT_SECRETS: 'old-cluster-secret-0123, older-cluster-secret-01'
  })
  t.same(env.cluster, {
    relays: ['r:8081'],
    peers: ['a:1', 'dns:b:2'],
    secret: 'env-cluster-secret-0123',
    acceptSecrets: ['old-cluster-secret-0123', 'older-cluster-secret-01']
  })
  const c = buildConfig([env])
  t.same(c.cluster.peers, ['a:1', 'dns:b:2'])
  t.equal(c.cluster.secret, 'env-cluster-secret-0123', 'the cluster secret from the environment')
  t.equal(c.origin.mediaDir, '/m')
  t.equal(c.tls.port, 8443)
  t.equal(parseCli([], { TUNNELGATE_CONFIG: '/etc/tg.yml' }).configFile, '/etc/tg.yml')
  t.equal(parseCli(['--config', '/x.yml'], { TUNNELGATE_CONFIG: '/etc/tg.yml' }).configFile, '/x.yml')
})

/**
 * HTTP route backends: the health-probe and load-tie settings (healthPath, rtspBackend,
 * httpProxy.probe*) and the probe itself against real loopback HTTP servers (2xx-4xx pass; 5xx,
 * refused and silent fail within probeTimeoutMs).
 */
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { buildConfig } from '../../../src/config/config.js'
import { probeHttp } from '../../../src/web/http-backends.js'

t.test('healthPath, rtspBackend and httpProxy.probe* settings', async t => {
  const c = buildConfig([{
    backends: [{ name: 'origin-a', url: 'rtsp://10.0.0.5:554' }],
    httpRoutes: [{ path: '/hls', backends: [{ url: 'http://10.0.0.5:8080/hls', rtspBackend: 'origin-a', healthPath: '/health?x=1' }, 'http://10.0.0.6:8080', 'http://10.0.0.7:8080/a/b'] }],
    httpProxy: { probeIntervalMs: 500, probeRise: 3, probeFall: 2, probeTimeoutMs: 700 }
  }])
  const [a, b, d] = c.httpRoutes[0]!.backends
  t.equal(a!.rtspBackend, 'origin-a')
  t.equal(a!.healthPath, '/health?x=1', 'explicit healthPath kept')
  t.equal(b!.healthPath, '/', 'root base: probe /')
  t.equal(b!.rtspBackend, '', 'untied by default')
  t.equal(d!.healthPath, '/a/b/', 'default: the base path')
  t.has(c.httpProxy, { probeIntervalMs: 500, probeRise: 3, probeFall: 2, probeTimeoutMs: 700 })
  t.has(buildConfig([{}]).httpProxy, { probeIntervalMs: 2000, probeTimeoutMs: 2000, probeRise: 2, probeFall: 1 }, 'defaults')
  const bad: Array<[unknown, RegExp]> = [
    [{ backends: [{ name: 'origin-a', url: 'rtsp://h:554' }], httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', rtspBackend: 'origin-z' }] }] }, /rtspBackend' names no configured RTSP backend \('origin-z'; backends\[\]\.name: origin-a\)/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', rtspBackend: 3 }] }] }, /rtspBackend' must be the name/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', healthPath: 'health' }] }] }, /healthPath' must be a path starting with '\/'/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', healthPath: '/x/../y' }] }] }, /healthPath' must be a canonical path/],
    [{ httpProxy: { probeIntervalMs: -1 } }, /httpProxy\.probeIntervalMs' must be between 0/],
    [{ httpProxy: { probeTimeoutMs: 0 } }, /httpProxy\.probeTimeoutMs' must be between 1/],
    [{ httpProxy: { probeRise: 0 } }, /httpProxy\.probeRise' must be between 1 and 100/],
    [{ httpProxy: { probeFall: 101 } }, /httpProxy\.probeFall' must be between 1 and 100/]
  ]
  for (const [layer, re] of bad) t.throws(() => buildConfig([layer as Record<string, unknown>]), re, JSON.stringify(layer))
})

t.test('probeHttp against real loopback servers', async t => {
  const paths: string[] = []
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '')
    const status = req.url === '/ok' ? 200 : req.url === '/forbidden' ? 403 : 503
    res.writeHead(status, { 'content-type': 'text/plain' })
    res.end('x'.repeat(100_000)) // the body is never read
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const silentSockets: net.Socket[] = []
  const silent = net.createServer(s => { silentSockets.push(s); s.on('error', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  const closed = net.createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const closedPort = (closed.address() as net.AddressInfo).port
  await new Promise<void>(resolve => closed.close(() => resolve()))
  t.teardown(() => { server.close(); for (const s of silentSockets) s.destroy(); silent.close() })
  const port = (server.address() as net.AddressInfo).port

  t.has(await probeHttp('127.0.0.1', port, '/ok', 1000), { ok: true, status: 200 })
  t.has(await probeHttp('127.0.0.1', port, '/forbidden', 1000), { ok: true, status: 403 }, 'a 403 still proves a live HTTP server')
  t.has(await probeHttp('127.0.0.1', port, '/broken', 1000), { ok: false, status: 503, reason: 'HTTP 503' }, '5xx fails')
  t.same(paths, ['/ok', '/forbidden', '/broken'], 'GET of exactly the probe path')
  t.has(await probeHttp('127.0.0.1', closedPort, '/', 1000), { ok: false, reason: 'ECONNREFUSED' }, 'refused fails')
  const t0 = Date.now()
  const s = await probeHttp('127.0.0.1', (silent.address() as net.AddressInfo).port, '/', 300)
  t.has(s, { ok: false, reason: 'no answer within 300 ms' }, 'silent fails')
  t.ok(Date.now() - t0 < 2000, 'within the probe timeout')
})

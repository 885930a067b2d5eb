/**
 * The HTTP route backends' health probe (src/web/http-backends.ts) against real loopback HTTP servers
 * (2xx-4xx pass; 5xx, refused and silent fail within probeTimeoutMs).
 */
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { probeHttp } from '../../../src/web/http-backends.js'

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
  t.has(await probeHttp('127.0.0.1', port, '/forbidden', 1000), { ok: true, status: 403 },
    'a 403 still proves a live HTTP server')
  t.has(await probeHttp('127.0.0.1', port, '/broken', 1000), { ok: false, status: 503, reason: 'HTTP 503' },
    '5xx fails')
  t.same(paths, ['/ok', '/forbidden', '/broken'], 'GET of exactly the probe path')
  t.has(await probeHttp('127.0.0.1', closedPort, '/', 1000), { ok: false, reason: 'ECONNREFUSED' }, 'refused fails')
  const t0 = Date.now()
  const s = await probeHttp('127.0.0.1', (silent.address() as net.AddressInfo).port, '/', 300)
  t.has(s, { ok: false, reason: 'no answer within 300 ms' }, 'silent fails')
  t.ok(Date.now() - t0 < 2000, 'within the probe timeout')
})

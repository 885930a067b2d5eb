/**
 * What the public port shows, in every layout (one process, two relay workers, a portal in front of
 * a relay node, and that relay node itself), with gateway auth off and on (Basic users and tokens):
 *  - every ops path (/metrics, /status, /status/*, the status page and its assets, /admin/*) is a
 *    404 there, with and without valid credentials, while the ops listener serves them;
 *  - a crawl of every public route and answer (health, /watch pages and assets, HTTP routes with a
 *    redirect and a dead backend, 404s, a malformed head, a refused WebSocket, a tunnel's DESCRIBE,
 *    an unknown stream, plain RTSP) never names a backend: not its host:port, not its name (nor, at
 *    a portal, the relay node's address).
 */
import http from 'node:http'
import net from 'node:net'
import t, { type Test } from 'tap'
import type { Gateway } from '../../src/gateway.js'
import { hashPassword } from '../../src/door/auth.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, destroyAllClients, exchangeRaw, rtspRequest } from '../helpers/tunnel-client.js'

const SECRET = 'public-surface-token-secret-01'
const BASIC = `Basic ${Buffer.from('viewer:s3cret').toString('base64')}`
const TOKEN = signHmacToken(SECRET, '/', Math.floor(Date.now() / 1000) + 600)
const OPS_PATHS = [
  '/metrics',
  '/status',
  '/status/live',
  '/status/summary',
  '/status/events',
  '/status/assets/app.js',
  '/status/assets/style.css',
  '/',
  '/favicon.ico',
  '/admin/tunnels',
  '/admin/openapi.json',
  '/admin/process',
  '/admin/backends'
]

const rtsp = await ScriptedBackend.start(dssScript({ absoluteControl: true }))
t.teardown(() => rtsp.close())
/** An HTTP backend: a page, and a redirect to its own address (which the portal must rewrite). */
const web = http.createServer((req, res) => {
  const self = `http://127.0.0.1:${(web.address() as net.AddressInfo).port}`
  if (req.url?.startsWith('/hls/redirect') === true) {
    res.writeHead(302, { location: `${self}/hls/page.txt` })
    res.end()
    return
  }
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('a page from the web backend\n')
})
await new Promise<void>(resolve => web.listen(0, '127.0.0.1', () => resolve()))
t.teardown(() => { web.close() })
const webPort = (web.address() as net.AddressInfo).port
const dead = net.createServer()
await new Promise<void>(resolve => dead.listen(0, '127.0.0.1', () => resolve()))
const deadPort = (dead.address() as net.AddressInfo).port
await new Promise<void>(resolve => dead.close(() => resolve()))
t.afterEach(() => { destroyAllClients() })

const NAMES = { rtsp: 'secret-origin-a', web: 'secret-web-a', dead: 'secret-web-dead' }
const httpRoutes = [
  { path: '/hls', backends: [{ url: `http://127.0.0.1:${webPort}/hls`, name: NAMES.web }] },
  { path: '/dead', backends: [{ url: `http://127.0.0.1:${deadPort}`, name: NAMES.dead }] }
]
const authLayer = { auth: { basic: [{ user: 'viewer', hash: hashPassword('s3cret', 1024) }], tokenSecrets: [SECRET] } }

interface Layout { name: string, public: Gateway, ops: Gateway, needles: string[], plainRtsp: boolean }

async function layout (
  t: Test,
  kind: 'one process' | 'two workers' | 'portal' | 'relay node',
  auth: boolean
): Promise<Layout> {
  const backends = [{ name: NAMES.rtsp, url: rtsp.url }]
  const common = {
    httpRoutes,
    httpProxy: { probeIntervalMs: 0, retries: 0 },
    watch: { streams: ['/live/cam1'] },
    admin: { enabled: true },
    ...(auth ? authLayer : {})
  }
  const needles = [
    `127.0.0.1:${rtsp.port}`,
    `127.0.0.1:${webPort}`,
    `127.0.0.1:${deadPort}`,
    NAMES.rtsp,
    NAMES.web,
    NAMES.dead
  ]
  if (kind === 'one process' || kind === 'two workers') {
    const gw = await startTestGateway(t, [], { ...common, backends, workers: kind === 'two workers' ? 2 : 0 })
    return { name: kind, public: gw, ops: gw, needles, plainRtsp: !auth }
  }
  const relay = await startTestGateway(t, [], { ...common, role: 'relay', backends })
  if (kind === 'relay node') return { name: kind, public: relay, ops: relay, needles, plainRtsp: false }
  const portal = await startTestGateway(t, [], {
    ...common,
    role: 'portal',
    cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200 }
  })
  return { name: kind, public: portal, ops: relay, needles: [...needles, `127.0.0.1:${relay.port}`], plainRtsp: !auth }
}

const exchange = async (port: number, bytes: string, ms = 1500): Promise<string> => await exchangeRaw(port, bytes, ms)

/** A GET on the public port, headers and body as text. */
async function page (
  port: number,
  path: string,
  headers: Record<string, string> = {}
): Promise<{ status: number, text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers, redirect: 'manual' })
  const head = [...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n')
  return { status: r.status, text: `${r.status}\n${head}\n\n${await r.text()}` }
}

for (const auth of [false, true]) {
  for (const kind of ['one process', 'two workers', 'portal', 'relay node'] as const) {
    t.test(`${kind}, gateway auth ${auth ? 'on' : 'off'}`, async t => {
      const l = await layout(t, kind, auth)
      const port = l.public.port
      const creds: Array<[string, Record<string, string>, string]> = [
        ['no credentials', {}, ''],
        ...(auth
          ? [
              ['Basic', { authorization: BASIC }, ''],
              ['a token', {}, `?token=${encodeURIComponent(TOKEN)}`]
            ] as Array<[string, Record<string, string>, string]>
          : [])
      ]

      // Ops paths: 404 on the public port whatever the credentials; served by the ops listener.
      for (const path of OPS_PATHS) {
        for (const [who, headers, query] of creds) {
          const r = await page(port, path + query, headers)
          t.equal(r.status, 404, `${path} on the public port (${who}): 404`)
          t.notMatch(
            r.text,
            /tunnelgate_|"relays"|"backends"|"openapi"|<html/,
            `${path} (${who}): nothing of it in the answer`
          )
        }
      }
      for (const path of [
        '/metrics', '/status', '/status/live', '/', '/admin/openapi.json'
      ]) t.equal((await fetch(`http://127.0.0.1:${l.ops.opsPort}${path}`)).status, 200, `${path} on the ops listener: 200`)

      // The crawl: everything the public port answers, with and without credentials.
      const seen: Array<[string, string]> = []
      const paths = [
        '/healthz',
        '/readyz',
        '/watch',
        '/watch/live/cam1',
        '/watch/no/such/stream',
        '/watch/..%2f..',
        '/watch-assets/player.js',
        '/hls-player.html',
        '/hls/page.txt',
        '/hls/redirect',
        '/hls/../../etc/passwd',
        '/dead/x',
        '/nope',
        '/admin',
        '/status/../metrics',
        '/metrics?x=1'
      ]
      for (const [who, headers, query] of creds) {
        for (const p of paths) seen.push([`GET ${p} (${who})`, (await page(port, p + query, headers)).text])
      }
      if (kind !== 'relay node' && !auth) {
        const h = await page(port, '/hls/redirect')
        t.equal(h.status, 302, 'the HTTP route redirect')
        t.match(h.text, /^location: \/hls\/page\.txt$/m, 'rewritten to the public prefix')
        t.equal((await page(port, '/hls/page.txt')).status, 200, 'the HTTP route serves')
        t.match(
          (await page(port, '/hls/page.txt')).text,
          /set-cookie: tg_http=[0-9a-f]{32}\.\d{1,4};/,
          'the affinity cookie names the backend by its place in the route, not by name or address'
        )
        t.equal((await page(port, '/dead/x')).status, 502, 'the dead backend: 502')
      }
      seen.push(['a malformed head', await exchange(port, 'GARBAGE\r\n\r\n')])
      seen.push([
        'a WebSocket of version 12',
        await exchange(
          port,
          'GET /rtsp-over-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n'
        )
      ])
      seen.push([
        'a tunnel GET without credentials',
        await exchange(
          port,
          'GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: Qh7Jk2Lm9Np4Rs6Tzz\r\n' +
          'Accept: application/x-rtsp-tunnelled\r\n\r\n',
          500
        )
      ])
      if (kind !== 'relay node') {
        const tc = await TunnelClient.open(port, {
          path: auth ? `/live/cam1?token=${encodeURIComponent(TOKEN)}` : '/live/cam1',
          url: 'rtsp://gw.example.net/live/cam1',
          ...(auth ? { getHeaders: [['Authorization', BASIC]] } : {})
        })
        const d = await tc.request('DESCRIBE', tc.url, [['Accept', 'application/sdp']], { timeoutMs: 5000 })
        t.equal(d.status, 200, 'a tunnel DESCRIBE plays')
        t.match(
          d.raw.toString('latin1'),
          /a=control:rtsp:\/\/gw\.example\.net\/live\/cam1\//,
          'its absolute SDP controls are rewritten to the public URL'
        )
        await tc.request('DESCRIBE', 'rtsp://gw.example.net/no/such', [], { timeoutMs: 5000 })
        await tc.request('OPTIONS', '*', [], { timeoutMs: 5000 })
        seen.push(['a tunnel', tc.get.allBytes.toString('latin1')])
        tc.close()
      }
      if (l.plainRtsp) {
        seen.push([
          'plain RTSP',
          await exchange(
            port,
            rtspRequest('DESCRIBE', 'rtsp://gw.example.net/live/cam1', 1) +
              rtspRequest('DESCRIBE', 'rtsp://gw.example.net/nope', 2).toString()
          )
        ])
      } else {
        seen.push([
          'plain RTSP (refused)',
          await exchange(port, rtspRequest('DESCRIBE', 'rtsp://gw.example.net/live/cam1', 1).toString())
        ])
      }
      t.ok(seen.length >= 20, `${seen.length} public answers crawled`)
      const leaks = seen.flatMap(([what, text]) =>
        l.needles.filter(n => text.includes(n)).map(n => `${what} names ${n}`)
      )
      t.same(leaks, [], `no public answer names a backend (${l.needles.join(', ')})`)
    })
  }
}

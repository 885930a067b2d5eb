/**
 * HTTP routes, balancing on real peers: nginx backends and embedded RTSP origins.
 * - New HLS viewers go to the HTTP backend whose tied RTSP backend (`rtspBackend`) has fewer
 *   sessions (real RTSP-over-HTTP sessions opened through the gateway by ffmpeg load one origin);
 *   an untied route over the same servers splits the same viewers evenly (the control).
 * - Active health probes: an nginx that is stopped leaves the choice before any viewer hits it
 *   (tunnelgate_http_backend_up goes to 0, no upstream error is counted, its viewer moves), and
 *   comes back once it passes its probes again after a restart on the same port.
 */
import t, { type Test } from 'tap'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { haveNginx, makeMedia, startNginx } from '../helpers/nginx.js'
import { metric } from '../helpers/gateway-harness.js'
import { play, stopAllPlayers, until } from '../helpers/ops.js'

if (!haveNginx) throw new Error('nginx is not installed (apt-get install nginx; .ci/run installs it)')

const quiet = { info () {}, warn () {}, error () {} }

async function gateway (t: Test, layer: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway(buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    ops: { port: 0 },
    ...layer
  }]))
  t.teardown(async () => { await gw.close() })
  return gw
}

interface Answer { status: number, backend: string, cookie: string | null }

/** One request as a viewer: a distinct User-Agent is a distinct viewer (no cookie), or its cookie. */
async function get (url: string, viewer: { ua: string, cookie?: string }): Promise<Answer> {
  const res = await fetch(url, {
    headers: { 'user-agent': viewer.ua, ...(viewer.cookie !== undefined ? { cookie: viewer.cookie } : {}) },
    signal: AbortSignal.timeout(10_000)
  })
  await res.arrayBuffer()
  const set = res.headers.get('set-cookie')
  return {
    status: res.status,
    backend: res.headers.get('x-backend') ?? '?',
    cookie: set === null ? null : set.split(';')[0]!
  }
}

interface StatusBackend {
  name: string,
  healthy: boolean,
  up: boolean,
  probe: string,
  viewers: number,
  rtspSessions: number | null,
  load: number
}
async function backendsOf (gw: Gateway, route: string): Promise<StatusBackend[]> {
  const s = await (await fetch(`http://127.0.0.1:${gw.opsPort}/status`)).json() as {
    httpRoutes: Array<{ path: string, backends: StatusBackend[] }>
  }
  return s.httpRoutes.find(r => r.path === route)!.backends
}

for (const workers of [0, 2]) {
  t.test(`new HLS viewers go to the backend whose tied RTSP backend has fewer sessions (${workers} relay workers)`,
    async t => {
      const media = makeMedia(t, 4)
      const a = await startNginx(t, media.root, 'a')
      const b = await startNginx(t, media.root, 'b')
      const o1: OriginHandle = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
      const o2: OriginHandle = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
      t.teardown(async () => { await stopAllPlayers(); await o1.close(); await o2.close() })
      const gw = await gateway(t, {
        workers,
        balancer: { scrapeIntervalMs: 250 }, // with workers: their session sums reach the portal at this interval
        backends: [{ name: 'origin-a', url: `rtsp://127.0.0.1:${o1.port}` }, {
          name: 'origin-b',
          url: `rtsp://127.0.0.1:${o2.port}`
        }],
        // Every RTSP session of /live goes to origin-a: the machine of nginx a is the busy one.
        routes: [{ path: '/live', backends: ['origin-a'] }],
        httpRoutes: [
          {
            path: '/hls',
            backends: [{ url: `${a.url}/hls`, name: 'web-a', rtspBackend: 'origin-a' }, {
              url: `${b.url}/hls`,
              name: 'web-b',
              rtspBackend: 'origin-b'
            }]
          },
          // The control: the same servers, untied.
          {
            path: '/plain',
            backends: [{ url: `${a.url}/hls`, name: 'plain-a' }, { url: `${b.url}/hls`, name: 'plain-b' }]
          }
        ]
      })
      const base = `http://127.0.0.1:${gw.port}`
      for (let i = 0; i < 3; i++) play(`rtsp://127.0.0.1:${gw.port}/live/demo`)
      const rtspSessions = async (): Promise<Record<string, number>> => {
        const s = await (await fetch(`http://127.0.0.1:${gw.opsPort}/status`)).json() as {
          backends: Array<{ name: string, sessions: number }>
        }
        return Object.fromEntries(s.backends.map(x => [x.name, x.sessions]))
      }
      t.same(await until(rtspSessions, n => n['origin-a'] === 3, '3 RTSP sessions on origin-a', 30_000),
        { 'origin-a': 3, 'origin-b': 0 }, 'RTSP sessions: 3 on origin-a, none on origin-b')
      const tied = await until(async () => await backendsOf(gw, '/hls'),
        bs => bs.find(x => x.name === 'web-a')!.rtspSessions === 3, '/status: web-a carries origin-a\'s 3 sessions')
      t.same(tied.map(x => [x.name, x.rtspSessions, x.load]), [['web-a', 3, 3], ['web-b', 0, 0]],
        '/status: rtspSessions and load per HTTP backend')

      const onTied: string[] = []
      const onPlain: string[] = []
      for (let i = 0; i < 3; i++) {
        const r = await get(`${base}/hls/stream.m3u8`, { ua: `viewer-${i}` })
        t.equal(r.status, 200)
        onTied.push(r.backend)
      }
      for (let i = 0; i < 6; i++) {
        const r = await get(`${base}/plain/stream.m3u8`, { ua: `viewer-${i}` })
        t.equal(r.status, 200)
        onPlain.push(r.backend)
      }
      t.same(onTied, ['b', 'b', 'b'],
        'all three new viewers went to the machine without RTSP sessions (load 3 vs 0, 1, 2)')
      t.same([onPlain.filter(x => x === 'a').length, onPlain.filter(x => x === 'b').length], [3, 3],
      `the untied control splits six viewers evenly (${onPlain.join(',')})`)
      const after = await backendsOf(gw, '/hls')
      t.same(after.map(x => [x.name, x.viewers, x.load]), [['web-a', 0, 3], ['web-b', 3, 3]],
        'loads are even now: 3 RTSP sessions vs 3 HTTP viewers')
      t.same(await rtspSessions(), { 'origin-a': 3, 'origin-b': 0 }, 'the RTSP sessions are still open')
    })
}

t.test('active health probes: a stopped nginx leaves the choice before a viewer hits it, and comes back', async t => {
  const media = makeMedia(t, 4)
  const a = await startNginx(t, media.root, 'a')
  let b = await startNginx(t, media.root, 'b')
  const gw = await gateway(t, {
    httpRoutes: [{
      path: '/hls',
      backends: [{ url: `${a.url}/hls`, name: 'web-a' }, { url: `${b.url}/hls`, name: 'web-b' }]
    }],
    httpProxy: { probeIntervalMs: 200, probeTimeoutMs: 500, probeRise: 3, probeFall: 1 }
  })
  const base = `http://127.0.0.1:${gw.port}`
  const up = async (name: string): Promise<number> => await metric(gw, 'tunnelgate_http_backend_up', { backend: name })
  await until(async () => await backendsOf(gw, '/hls'), bs => bs.every(x => x.probe === '403'),
    'first probes answered (GET /hls/ → 403 from nginx: a live server)', 5000, 50)
  t.equal(await up('web-a') + await up('web-b'), 2, 'both up')
  t.ok(b.accessLog().some(l => l.request === 'GET /hls/ HTTP/1.1'), 'the probe GETs the base path on the backend')

  // A viewer on b (new viewers alternate while loads are even).
  let onB: { ua: string, cookie: string } | null = null
  for (let i = 0; i < 4 && onB === null; i++) {
    const r = await get(`${base}/hls/stream.m3u8`, { ua: `early-${i}` })
    if (r.backend === 'b') onB = { ua: `early-${i}`, cookie: r.cookie! }
  }
  t.ok(onB !== null, 'a viewer landed on b')

  await b.kill()
  const t0 = Date.now()
  await until(async () => await up('web-b'), v => v === 0, 'web-b out of the choice', 3000, 20)
  t.ok(Date.now() - t0 < 2000, `out within ${Date.now() - t0} ms (probe every 200 ms, fall 1)`)
  t.ok(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_BACKEND_PROBE' }) >= 1,
    'TG_ERR_HTTP_BACKEND_PROBE counted')
  const st = (await backendsOf(gw, '/hls')).find(x => x.name === 'web-b')!
  t.same([st.healthy, st.up], [false, false], `/status: web-b down (${st.probe})`)

  const moved = await get(`${base}/hls/seg000.ts`, onB!)
  t.same([moved.status, moved.backend], [200, 'a'], "b's viewer moved to a on its next request")
  for (let i = 0; i < 4; i++) {
    const r = await get(`${base}/hls/stream.m3u8`, { ua: `during-${i}` })
    t.same([r.status, r.backend], [200, 'a'], `new viewer ${i} → a`)
  }
  t.equal(await metric(gw, 'tunnelgate_http_upstream_errors_total', { backend: 'web-b' }), 0,
    'no viewer request hit the stopped backend')
  t.equal(await metric(gw, 'tunnelgate_http_requests_total', { backend: 'web-b', status: '200' }), 1,
    'web-b served only the early viewer')

  // Restart b on the same port: back after probeRise passing probes.
  b = await startNginx(t, media.root, 'b', { port: b.port })
  const t1 = Date.now()
  await until(async () => await up('web-b'), v => v === 1, 'web-b back in the choice', 5000, 20)
  t.ok(Date.now() - t1 >= 2 * 200 - 50, `back after the rise (${Date.now() - t1} ms, 3 passes at 200 ms)`)
  t.ok(b.accessLog().filter(l => l.request === 'GET /hls/ HTTP/1.1').length >= 3,
    'three probes passed on the restarted nginx first')
  // a carries 5 viewers, b none: the next new viewer goes to b.
  const back = await get(`${base}/hls/stream.m3u8`, { ua: 'after' })
  t.same([back.status, back.backend], [200, 'b'], 'a new viewer goes to the restarted backend')
})

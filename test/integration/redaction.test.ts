/**
 * No secret reaches a log line, the access log or an ops view. The real binary (one relay worker,
 * log level debug, gateway auth with Basic users and tokens, an HTTP route, a backend URL with a
 * password) carries tunnels whose GET has a query token and an Axis ?sessioncookie=, one with
 * Basic credentials, a WebSocket with a token, refused GETs (bad token, no credentials, a query
 * of its own), an RTSP request for another path with the token in its URL, and an HTTP route
 * request with a token. Every stdout line (portal and worker), the access log file, /status,
 * /status/live, /status/summary, /admin/tunnels and /metrics are searched for each token, cookie,
 * password and Basic credential; the views show the stream path.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { hashPassword } from '../../src/door/auth.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { freePort } from '../helpers/ports.js'
import { GetLeg, TunnelClient, connect, destroyAllClients, getStatusLine } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SECRET = 'redaction-token-secret-0123'
const exp = Math.floor(Date.now() / 1000) + 600
const T_QUERY = signHmacToken(SECRET, '/live/', exp)
const T_AXIS = signHmacToken(SECRET, '/axis-media/', exp + 1)
const T_WS = signHmacToken(SECRET, '/live/', exp + 2)
const T_HTTP = signHmacToken(SECRET, '/hls/', exp + 3)
const T_BAD = signHmacToken('some-other-secret-0123', '/live/', exp)
const AXIS_COOKIE = 'AxisSessionCookie77'
const COOKIES = [
  'CookieQueryTunnel0001',
  'CookieAxisTunnel00002',
  'CookieBasicTunnel0003',
  'CookieRefused00000004',
  'CookieRefused00000005'
]
const PASSWORD = 'Pa55word-for-viewer'
const BASIC = Buffer.from(`viewer:${PASSWORD}`).toString('base64')
const BACKEND_PASSWORD = 'Backend-Pa55word'
const QUERY_SECRET = 'QuerySecretValue42'
const SECRETS = [
  T_QUERY,
  T_AXIS,
  T_WS,
  T_HTTP,
  T_BAD,
  ...[T_QUERY, T_AXIS, T_WS, T_HTTP].map(x => x.split('.').pop()!),
  AXIS_COOKIE,
  ...COOKIES,
  PASSWORD,
  BASIC,
  BACKEND_PASSWORD,
  QUERY_SECRET
]

t.test(
  'tokens, cookies and passwords appear in no log line, access record or ops view',
  { skip: existsSync(`${ROOT}dist/main.js`) ? false : 'dist/ not built (npm test builds it)' },
  async t => {
    const backend = await ScriptedBackend.start(dssScript())
    t.teardown(() => backend.close())
    const dir = mkdtempSync(join(tmpdir(), 'tg-redact-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const [port, opsPort, deadPort] = [await freePort(), await freePort(), await freePort()]
    const access = join(dir, 'access.log')
    writeFileSync(
      join(dir, 'tg.json'),
      JSON.stringify({
        host: '127.0.0.1',
        port,
        workers: 1,
        logLevel: 'debug',
        ops: { port: opsPort },
        admin: { enabled: true },
        backends: [{ name: 'origin', url: `rtsp://feed:${BACKEND_PASSWORD}@127.0.0.1:${backend.port}` }],
        routes: [
          { path: '/live', backends: [] },
          { path: '/axis-media', backends: [] }
        ],
        auth: { basic: [{ user: 'viewer', hash: hashPassword(PASSWORD, 1024) }], tokenSecrets: [SECRET] },
        httpRoutes: [{ path: '/hls', backends: [`http://127.0.0.1:${deadPort}`] }],
        httpProxy: { probeIntervalMs: 0, retries: 0 },
        accessLog: { file: access },
        status: { sampleIntervalMs: 200 }
      })
    )
    const child = spawn(process.execPath, ['bin/tunnelgate.js', '--config', join(dir, 'tg.json')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TUNNELGATE_LOG_LEVEL: 'debug' }
    })
    let out = ''
    child.stdout.on('data', d => {
      out += String(d)
    })
    child.stderr.on('data', d => {
      out += String(d)
    })
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
    t.teardown(async () => {
      destroyAllClients()
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    })
    await waitFor(
      () => out.includes('"event":"ops-listening"') && out.includes('"event":"listening"'),
      'the gateway listening',
      20_000
    )
    const ops = async (path: string): Promise<string> =>
      await (await fetch(`http://127.0.0.1:${opsPort}${path}`)).text()

    // A tunnel with its token in the query, a request for another path with the token in its URL.
    const q = await TunnelClient.open(port, {
      cookie: COOKIES[0],
      path: `/live/cam1?token=${T_QUERY}`,
      url: `rtsp://gw.example.net/live/cam1?token=${T_QUERY}`
    })
    t.equal((await q.request('DESCRIBE', q.url)).status, 200, 'the query-token tunnel plays')
    t.equal(
      (await q.request('DESCRIBE', `rtsp://gw.example.net/other?token=${T_QUERY}`)).status,
      403,
      'another path: RTSP 403'
    )
    // An Axis-style GET (cookie and token in the query) that has sent no request yet.
    const axis = new GetLeg(await connect(port), COOKIES[1]!)
    await axis.write(
      `GET /axis-media/media.amp?sessioncookie=${AXIS_COOKIE}&token=${T_AXIS} HTTP/1.0\r\nx-sessioncookie: ${
        COOKIES[1]!}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`
    )
    t.equal(await getStatusLine(axis), 'HTTP/1.0 200 OK', 'the Axis GET is open')
    // Basic credentials.
    const b = await TunnelClient.open(port, {
      cookie: COOKIES[2],
      path: '/live/cam2',
      url: 'rtsp://gw.example.net/live/cam2',
      getHeaders: [['Authorization', `Basic ${BASIC}`]]
    })
    t.equal((await b.request('DESCRIBE', b.url)).status, 200, 'the Basic tunnel plays')
    // Refused GETs: a bad token, no credentials with a query of its own.
    const bad = new GetLeg(await connect(port), COOKIES[3]!)
    await bad.write(`GET /live/cam1?token=${T_BAD} HTTP/1.0\r\nx-sessioncookie: ${COOKIES[3]!}\r\n\r\n`)
    t.match(await getStatusLine(bad), /401/, 'a bad token: 401')
    const none = new GetLeg(await connect(port), COOKIES[4]!)
    await none.write(`GET /live/cam1?q=${QUERY_SECRET} HTTP/1.0\r\nx-sessioncookie: ${COOKIES[4]!}\r\n\r\n`)
    t.match(await getStatusLine(none), /401/, 'no credentials: 401')
    // A WebSocket with a token; an HTTP route request with one (its backend is down: 502).
    const ws = await connect(port)
    ws.write(
      `GET /rtsp-over-websocket?token=${T_WS} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`
    )
    t.equal(
      (await fetch(`http://127.0.0.1:${port}/hls/a.m3u8?token=${T_HTTP}`)).status,
      502,
      'the HTTP route with a token: 502'
    )

    // The ops views while they are open: the paths, nothing else.
    let tunnels: Array<{ path: string, user: string }> = []
    for (let i = 0; i < 50 && tunnels.length < 4; i++) {
      tunnels = (JSON.parse(await ops('/admin/tunnels')) as { tunnels: typeof tunnels }).tunnels
      if (tunnels.length < 4) await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.same(
      tunnels.map(x => x.path).sort(),
      ['/axis-media/media.amp', '/live/cam1', '/live/cam2', '/live/'].sort(),
      "the admin listing shows the paths (the WebSocket by its token's path until its first request)"
    )
    t.ok(
      tunnels.some(x => x.path === '/axis-media/media.amp'),
      'the Axis GET is listed by its path only, before any request'
    )
    t.ok(
      tunnels.some(x => x.user === 'viewer'),
      'the Basic user is named'
    )
    await new Promise(resolve => setTimeout(resolve, 500))
    const views: Array<[string, string]> = []
    for (const p of [
      '/status', '/status/live', '/status/summary', '/admin/tunnels', '/metrics'
    ]) views.push([p, await ops(p)])
    t.match(views[1]![1], /"path":"\/axis-media\/media\.amp"/, '/status/live names the Axis stream by its path')

    for (const c of [q, b]) c.close()
    axis.destroy()
    ws.destroy()
    await waitFor(
      () => existsSync(access) && readFileSync(access, 'utf8').trim().split('\n').length >= 4,
      'the access lines',
      10_000
    )
    child.kill('SIGTERM')
    await exited
    const lines = out.split('\n').filter(l => l.startsWith('{'))
    t.ok(
      lines.some(l => l.includes('"event":"tunnel-opened"') && l.includes('"relay-worker"')) ||
        lines.some(l => l.includes('"event":"tunnel-opened"')),
      'tunnel-opened lines were written'
    )
    t.ok(
      lines.some(l => l.includes('"event":"tunnel-closed"')),
      'tunnel-closed lines were written'
    )
    t.ok(
      lines.some(l => /"path":"\/axis-media\/media\.amp"/.test(l)),
      'a log line names the Axis path'
    )
    const accessText = readFileSync(access, 'utf8')
    t.match(accessText, /"path":"\/live\/cam1"/, 'the access log names the path')
    const places: Array<[string, string]> = [
      ...lines.map((l, i) => [`log line ${i}`, l] as [string, string]),
      ['the access log', accessText],
      ...views
    ]
    const found = places.flatMap(([where, text]) =>
      SECRETS.filter(s => text.includes(s)).map(s => `${where}: ${s.slice(0, 12)}…`)
    )
    t.same(found, [], `no secret in ${lines.length} log lines, the access log or ${views.length} ops views`)
  }
)

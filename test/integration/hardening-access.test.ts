/**
 * Issue 5 access control and "never an open proxy", over real sockets:
 * - tokens (tunnelgate HMAC and HS256 JWT): verification, expiry, path binding on the GET and
 *   inside the tunnel, Bearer and query forms; ffmpeg with a query token, ffmpeg's and an
 *   openRTSP-style raw client's retry-on-401 with Basic while tokens are also on;
 * - IP allow/deny lists (CIDR);
 * - SSRF attempts (rtsp://169.254.169.254/, rtsp://127.0.0.1:22/, other hosts and ports, absolute
 *   URIs and Host in the GET, Transport destination=, UDP transports): a connect hook records
 *   every outgoing connection of this process and listeners sit on the loopback ports tried; only
 *   the configured backend is ever dialled.
 */
import t from 'tap'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { startTestGateway, errorCount } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import { GetLeg, PostLeg, TunnelClient, b64, destroyAllClients, rtspRequest } from '../helpers/tunnel-client.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'
import {
  createAddressFilter,
  pathAllowed,
  signGrant,
  signHmacToken,
  signJwt,
  tokenOf,
  verifyGrant,
  verifyToken
} from '../../src/tunnel/codec/access.js'
import { hashPassword } from '../../src/door/auth.js'
import { buildConfig } from '../../src/config/config.js'
import { startGateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { gstSummary, runGst, runPeer } from '../helpers/peers.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'

const newCookie = (): string => randomBytes(16).toString('base64url')
const SECRET = 'correct horse battery staple'
const now = (): number => Math.floor(Date.now() / 1000)

// Every outgoing TCP connection this process makes (the gateway runs in it).
const dialled: string[] = []
const realConnect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const a = args[0]
  if (Array.isArray(a)) {
    dialled.push(
      String((a[0] as { host?: string, port?: number })?.host) + ':' + String((a[0] as { port?: number })?.port)
    )
  } else if (typeof a === 'object' && a !== null) {
    dialled.push(
      `${(a as { host?: string }).host ?? 'localhost'}:${
        (a as { port?: number, path?: string }).port ?? (a as { path?: string }).path}`
    )
  } else dialled.push(`${typeof args[1] === 'string' ? args[1] : 'localhost'}:${String(a)}`)
  return (realConnect as (...x: unknown[]) => net.Socket).apply(this, args)
} as typeof net.Socket.prototype.connect
t.teardown(() => { net.Socket.prototype.connect = realConnect; destroyAllClients() })

t.test('token and address-list primitives', async t => {
  const tok = signHmacToken(SECRET, '/live/cam1', now() + 60)
  t.match(verifyToken(tok, [SECRET], now()), { ok: true, path: '/live/cam1' }, 'HMAC token verifies')
  t.match(verifyToken(tok, ['another secret of 16+'], now()), { ok: false, reason: 'bad-signature' }, 'wrong secret')
  t.match(verifyToken(tok, ['old secret 0123456789', SECRET], now()), { ok: true }, 'any configured secret (rotation)')
  t.match(
    verifyToken(signHmacToken(SECRET, '/live/cam1', now() - 1), [SECRET], now()),
    { ok: false, reason: 'expired' },
    'expired HMAC token'
  )
  const parts = tok.split('.')
  const forged = [parts[0], parts[1], Buffer.from('/').toString('base64url'), parts[3]].join('.')
  t.match(verifyToken(forged, [SECRET], now()), { ok: false, reason: 'bad-signature' }, 'path cannot be changed')
  const longer = [parts[0], String(now() + 99999), parts[2], parts[3]].join('.')
  t.match(verifyToken(longer, [SECRET], now()), { ok: false, reason: 'bad-signature' }, 'expiry cannot be changed')
  const jwt = signJwt(SECRET, { path: '/live/', exp: now() + 60 })
  t.match(verifyToken(jwt, [SECRET], now()), { ok: true, path: '/live/' }, 'JWT verifies')
  t.match(verifyToken(signJwt(SECRET, { path: '/live/', exp: now() - 5 }), [SECRET], now()), {
    ok: false,
    reason: 'expired'
  })
  t.match(verifyToken(signJwt(SECRET, { path: '/live/', exp: now() + 60, nbf: now() + 30 }), [SECRET], now()), {
    ok: false,
    reason: 'not-yet-valid'
  })
  t.match(
    verifyToken(signJwt(SECRET, { path: '/live/' }), [SECRET], now()),
    { ok: false, reason: 'malformed' },
    'JWT without exp refused'
  )
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${
    Buffer.from(JSON.stringify({ path: '/', exp: now() + 60 })).toString('base64url')}.`
  t.match(verifyToken(none, [SECRET], now()), { ok: false, reason: 'bad-algorithm' }, 'alg none refused')
  t.match(verifyToken(signJwt(SECRET, { path: '/', exp: now() + 60 }, { alg: 'HS512' }), [SECRET], now()), {
    ok: false,
    reason: 'bad-algorithm'
  })
  for (const junk of [
    '', 'a.b', 'tg1.x.y.z', '...', 'a'.repeat(5000), 'tg1.1.%%.x'
  ]) t.equal(verifyToken(junk, [SECRET], now()).ok, false, `junk '${junk.slice(0, 12)}' refused`)
  // Grants (the HTTP routes' grant cookie): their own signing domain, so neither passes for the other.
  const grant = signGrant(SECRET, '/hls/cam1', now() + 60)
  t.match(
    verifyGrant(grant, ['old secret 0123456789', SECRET], now()),
    { ok: true, path: '/hls/cam1' },
    'grant verifies with any configured secret'
  )
  t.match(verifyGrant(grant, ['another secret of 16+'], now()), { ok: false, reason: 'bad-signature' })
  t.match(verifyGrant(signGrant(SECRET, '/hls/cam1', now() - 1), [SECRET], now()), { ok: false, reason: 'expired' })
  t.equal(verifyToken(grant, [SECRET], now()).ok, false, 'a grant is not a token')
  t.equal(verifyGrant(tok, [SECRET], now()).ok, false, 'a token is not a grant')
  t.equal(
    verifyGrant(`g1.${tok.split('.').slice(1).join('.')}`, [SECRET], now()).ok,
    false,
    'a token relabelled as a grant: bad signature'
  )
  t.ok(pathAllowed('/live/cam1', '/live/cam1/trackID=1'))
  t.notOk(pathAllowed('/live/cam1', '/live/cam10'))
  t.ok(pathAllowed('/', '/anything'))
  t.equal(tokenOf('/x?a=1&token=abc%2E', [], 'token'), 'abc.')
  t.equal(tokenOf('/x', [['Authorization', 'Bearer xyz']], 'token'), 'xyz')
  const f = createAddressFilter(['10.0.0.0/8', '127.0.0.0/8', '::1/128'], ['127.0.0.66/32'])
  t.ok(f.allows('127.0.0.1')); t.ok(f.allows('::ffff:10.1.2.3')); t.ok(f.allows('::1'))
  t.notOk(f.allows('127.0.0.66')); t.notOk(f.allows('192.168.1.1')); t.notOk(f.allows('::2'))
  t.throws(() => buildConfig([{ access: { deny: ['10.0.0.0/33'] } }]), /access\.deny\[0\]/)
  t.throws(() => buildConfig([{ auth: { tokenSecrets: ['short'] } }]), /auth\.tokenSecrets\[0\]/)
})

t.test('tokens on the tunnel GET: query and Bearer, expiry, path binding inside the tunnel', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { auth: { tokenSecrets: [SECRET] } })
  const before = await leakSnapshot(gw)
  const status = async (leg: GetLeg): Promise<string> =>
    await waitFor(() => leg.head?.statusLine ?? (leg.closed ? leg.rawBeforeHead : undefined), 'GET answer')

  const none = await GetLeg.open(gw.port, { cookie: newCookie() })
  const noneText = await status(none)
  t.match(noneText, /^HTTP\/1\.0 401 /, 'no token: 401')
  await none.waitClosed(3000, 'the 401 connection closed')
  t.match(none.allBytes.toString('latin1'), /WWW-Authenticate: Bearer realm="tunnelgate"/, 'Bearer challenge')
  const expired = await GetLeg.open(gw.port, {
    cookie: newCookie(),
    headers: [['Authorization', `Bearer ${signJwt(SECRET, { path: '/live/cam1', exp: now() - 1 })}`]]
  })
  t.match(await status(expired), /^HTTP\/1\.0 401 /, 'expired JWT: 401')
  const otherPath = await GetLeg.open(gw.port, {
    cookie: newCookie(),
    path: `/live/cam1?token=${signHmacToken(SECRET, '/vod/', now() + 60)}`
  })
  t.match(await status(otherPath), /^HTTP\/1\.0 403 /, 'token for another path: 403')
  t.equal(await errorCount(gw, 'TG_ERR_AUTH_REQUIRED'), 1)
  t.equal(await errorCount(gw, 'TG_ERR_AUTH_TOKEN'), 1)
  t.equal(await errorCount(gw, 'TG_ERR_AUTH_FORBIDDEN'), 1)

  // Query token bound to /live/cam1: other paths inside the tunnel get RTSP 403 and nothing is dialled.
  const c = await TunnelClient.open(gw.port, {
    cookie: newCookie(),
    path: `/live/cam1?token=${encodeURIComponent(signHmacToken(SECRET, '/live/cam1', now() + 60))}`,
    url: 'rtsp://gw.example.net/live/cam1'
  })
  t.equal(c.get.head?.statusLine, 'HTTP/1.0 200 OK', 'valid query token: tunnel opens; its POST is not challenged')
  const sneaky = await c.request('DESCRIBE', 'rtsp://gw.example.net/live/cam2')
  t.equal(sneaky.status, 403, 'a request for a path outside the token: RTSP 403')
  t.equal(backend.conns.length, 0, 'nothing was dialled for it')
  const { session } = await c.play()
  t.ok(session !== '', 'the token path plays')
  t.equal((await c.request('OPTIONS', '*')).status, 200)
  // Bearer JWT for a prefix.
  const j = await TunnelClient.open(gw.port, {
    cookie: newCookie(),
    getHeaders: [['Authorization', `Bearer ${signJwt(SECRET, { path: '/live/', exp: now() + 60 })}`]]
  })
  t.equal(
    (await j.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1')).status,
    200,
    'Bearer JWT for a prefix covers paths below it'
  )
  const plain = net.connect(gw.port, '127.0.0.1')
  let plainOut = ''
  plain.on('data', d => { plainOut += d.toString('latin1') })
  plain.write(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1))
  await waitFor(() => plainOut.includes('\r\n\r\n'), 'plain RTSP answer')
  t.match(plainOut, /^RTSP\/1\.0 403/, 'plain RTSP cannot bypass token auth')
  plain.destroy()
  c.close(); j.close(); none.destroy(); expired.destroy(); otherPath.destroy()
  await assertNoLeaks(gw, before, [backend])
})

t.test(
  'portal role: the token path binding checked at the portal holds on a relay node without the token secrets',
  async t => {
    const backend = await ScriptedBackend.start()
    t.teardown(() => backend.close())
    const relay = await startTestGateway(t, [backend], { role: 'relay' })
    const portal = await startTestGateway(t, [], {
      role: 'portal',
      auth: { tokenSecrets: [SECRET] },
      cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
    })
    for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${portal.port}/readyz`)).status !== 200; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const c = await TunnelClient.open(portal.port, {
      cookie: newCookie(),
      path: `/live/cam1?token=${encodeURIComponent(signHmacToken(SECRET, '/live/cam1', now() + 60))}`,
      url: 'rtsp://gw.example.net/live/cam1'
    })
    t.equal(c.get.head?.statusLine, 'HTTP/1.0 200 OK', 'the tunnel opens through the portal')
    const sneaky = await c.request('DESCRIBE', 'rtsp://gw.example.net/live/cam2')
    t.equal(sneaky.status, 403, 'a request for a path outside the token: RTSP 403 from the relay node')
    t.equal(backend.conns.length, 0, 'nothing was dialled for it')
    t.equal(await errorCount(relay, 'TG_ERR_AUTH_FORBIDDEN'), 1, 'counted at the relay node')
    t.equal((await c.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1')).status, 200, 'the token path is served')
    c.close()
    // A client cannot pass a binding of its own to widen its access: the portal's header comes first.
    const forged = await TunnelClient.open(portal.port, {
      cookie: newCookie(),
      path: `/live/cam1?token=${encodeURIComponent(signHmacToken(SECRET, '/live/cam1', now() + 60))}`,
      url: 'rtsp://gw.example.net/live/cam1',
      getHeaders: [['X-Tunnelgate-Path', '%2F']]
    })
    t.equal(
      (await forged.request('DESCRIBE', 'rtsp://gw.example.net/live/cam2')).status,
      403,
      'a client-sent X-Tunnelgate-Path does not widen the binding'
    )
    forged.close()
  }
)

t.test('IP allow/deny lists', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { access: { allow: ['127.0.0.0/24'], deny: ['127.0.0.66/32'] } })
  const from = async (local: string): Promise<{ text: string, closed: boolean }> => await new Promise(resolve => {
    const s = net.connect({ port: gw.port, host: '127.0.0.1', localAddress: local })
    let text = ''
    s.on('data', d => { text += d.toString('latin1') })
    s.on('error', () => {})
    s.on('connect', () => s.write(`GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${newCookie()}\r\n\r\n`))
    s.on('close', () => resolve({ text, closed: true }))
    setTimeout(() => { s.destroy(); resolve({ text, closed: false }) }, 1500)
  })
  const denied = await from('127.0.0.66')
  t.same(denied, { text: '', closed: true }, 'denied address: closed, nothing answered')
  const outside = await from('127.0.1.1')
  t.same(outside, { text: '', closed: true }, 'address outside the allow list: closed')
  const ok = await from('127.0.0.7')
  t.match(ok.text, /^HTTP\/1\.0 200 OK/, 'allowed address gets its tunnel')
  t.equal(await errorCount(gw, 'TG_ERR_ACCESS_DENIED'), 2)
})

t.test('never an open proxy: only the configured backend is dialled', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  // Listeners on loopback targets a client names; they must never see a connection.
  const traps: net.Server[] = []
  let trapped = 0
  for (const [host, port] of [
    ['127.0.0.1', 22],
    ['127.0.0.1', 8554],
    ['127.0.0.2', 554],
    ['127.0.0.3', backend.port]
  ] as const) {
    const s = net.createServer(c => {
      trapped++
      c.destroy()
    })
    const ok = await new Promise<boolean>(resolve => {
      s.once('error', () => resolve(false))
      s.listen(port, host, () => resolve(true))
    })
    if (ok) traps.push(s)
  }
  t.teardown(() => { for (const s of traps) s.close() })
  t.ok(traps.length >= 2, `trap listeners up (${traps.length})`)
  const gw = await startTestGateway(t, [backend], { routes: [{ path: '/live/', backends: [] }] })
  const before = await leakSnapshot(gw)
  dialled.length = 0

  // Unrouted paths on foreign hosts: 404, nothing dialled.
  const c = await TunnelClient.open(gw.port, { cookie: newCookie() })
  for (const url of [
    'rtsp://169.254.169.254/latest/meta-data/',
    'rtsp://127.0.0.1:22/',
    'rtsp://127.0.0.2:554/x',
    'rtsp://[::1]:8554/secret',
    'rtsp://metadata.google.internal/computeMetadata/v1/'
  ]) {
    t.equal((await c.request('DESCRIBE', url)).status, 404, `${url}: 404`)
  }
  t.same(dialled.filter(d => !d.endsWith(`:${gw.port}`)), [], 'nothing dialled for unrouted URLs')
  // Routed paths on foreign hosts/ports go to the configured backend only, with its own authority.
  for (const url of [
    'rtsp://169.254.169.254/live/cam1',
    'rtsp://127.0.0.1:22/live/cam1',
    'rtsp://127.0.0.2:554/live/cam1'
  ]) {
    t.equal((await c.request('DESCRIBE', url)).status, 200, `${url}: served by the configured backend`)
  }
  const conn = await backend.waitConn()
  for (const r of conn.requests()) t.match(r.uri, new RegExp(`^rtsp://127\\.0\\.0\\.1:${backend.port}/live/cam1`), 'the backend sees its own address, not the client\'s host')
  // Transport destination= is stripped; UDP is refused.
  const setup = await c.request('SETUP', 'rtsp://127.0.0.1:22/live/cam1/trackID=1', [
    ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1;destination=169.254.169.254']
  ])
  t.equal(setup.status, 200)
  const sent = (await conn.waitRequest('SETUP'))
  t.notMatch(getHeader(sent, 'Transport') ?? '', /destination/i, 'destination= never reaches the backend')
  const udp = await c.request('SETUP', 'rtsp://gw/live/cam1/trackID=2', [
    ['Transport', 'RTP/AVP;unicast;destination=127.0.0.1;client_port=22-23']
  ])
  t.equal(udp.status, 461, 'UDP transport refused on a tunnel (461)')
  c.close()

  // Absolute URI and a foreign Host in the GET; OPTIONS * routes by the GET path.
  const abs = await GetLeg.open(gw.port, {
    cookie: newCookie(),
    path: 'http://169.254.169.254:80/live/cam1',
    headers: [['Host', '127.0.0.1:22']]
  })
  await abs.readHead()
  const absPost = await PostLeg.open(
    gw.port,
    { cookie: abs.cookie, path: 'http://127.0.0.1:22/live/cam1' },
    b64(Buffer.concat([rtspRequest('OPTIONS', '*', 1), rtspRequest('DESCRIBE', 'rtsp://127.0.0.1:22/live/cam1', 2)]))
  )
  t.equal((await abs.response(1)).status, 200)
  t.equal((await abs.response(2)).status, 200, 'served by the configured backend')
  abs.destroy(); absPost.destroy()

  const foreign = dialled.filter(d => d !== `127.0.0.1:${backend.port}` && !d.endsWith(`:${gw.port}`))
  t.same(foreign, [], 'no connection to anything but the configured backend')
  t.equal(trapped, 0, 'no trap listener saw a connection')
  await assertNoLeaks(gw, before, [backend])
})

t.test(
  'real clients: ffmpeg with a query token; ffmpeg and openRTSP-style retry-on-401 with Basic while tokens are on',
  async t => {
    const silent = pino({ level: 'silent' })
    const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
    t.teardown(() => origin.close())
    const config = buildConfig([
      {
        port: 0,
        host: '127.0.0.1',
        logLevel: 'silent',
        workers: 0,
        ops: { port: 0 },
        backends: [`rtsp://127.0.0.1:${origin.port}`],
        auth: { basic: [{ user: 'viewer', hash: hashPassword('s3cret', 1024) }], tokenSecrets: [SECRET] }
      }
    ])
    const gw = await startGateway(config, { logger: silent })
    t.teardown(() => gw.close())
    const token = signHmacToken(SECRET, '/demo', now() + 300)
    const ff = await runPeer(
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://127.0.0.1:${gw.port}/demo?token=${token}`,
        '-t',
        '2',
        '-f',
        'null',
        '-'
      ],
      { timeoutMs: 30_000 }
    )
    t.equal(ff.code, 0, `ffmpeg with a query token plays (stderr: ${ff.stderr.slice(0, 300)})`)
    const wrong = await runPeer(
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://127.0.0.1:${gw.port}/demo?token=${signHmacToken(SECRET, '/live/', now() + 300)}`,
        '-t',
        '1',
        '-f',
        'null',
        '-'
      ],
      { timeoutMs: 30_000 }
    )
    t.not(wrong.code, 0, 'ffmpeg with a token for another path is refused')
    const basic = await runPeer(
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://viewer:s3cret@127.0.0.1:${gw.port}/demo`,
        '-t',
        '2',
        '-f',
        'null',
        '-'
      ],
      { timeoutMs: 30_000 }
    )
    t.equal(basic.code, 0, `ffmpeg retries with Basic after the 401 and plays (stderr: ${basic.stderr.slice(0, 300)})`)
    // openRTSP-style: GET without credentials → 401 → new GET with Basic → 200; the POST carries no credentials.
    const cookie = newCookie()
    const first = await GetLeg.open(gw.port, { cookie, path: '/demo' })
    await first.waitClosed(3000, 'the 401 connection closed')
    t.match(first.rawBeforeHead, /^HTTP\/1\.0 401 [\s\S]*WWW-Authenticate: Basic realm="tunnelgate"/)
    const c = await TunnelClient.open(gw.port, {
      cookie,
      path: '/demo',
      url: `rtsp://127.0.0.1:${gw.port}/demo`,
      getHeaders: [['Authorization', `Basic ${Buffer.from('viewer:s3cret').toString('base64')}`]]
    })
    const d = await c.request('DESCRIBE', c.url, [['Accept', 'application/sdp']])
    t.equal(d.status, 200, 'retried GET with Basic: the tunnel works, POST not challenged')
    c.close()
    // runGst: sync=true, and GStreamer's own stop-time race told apart from a failure (test/helpers/peers.ts).
    const gst = await runGst(
      ['rtspsrc', `location=rtsph://127.0.0.1:${gw.port}/demo`, 'user-id=viewer', 'user-pw=s3cret', '!', 'decodebin'],
      30,
      { timeoutMs: 30_000 }
    )
    t.ok(gst.played, `GStreamer retry-on-401 with Basic plays while tokens are on (${gstSummary(gst)})`)
  }
)

t.test(
  'real client through a portal and a relay node without the token secrets: ffmpeg plays with a query token',
  async t => {
    const silent = pino({ level: 'silent' })
    const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
    t.teardown(() => origin.close())
    const relay = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], { role: 'relay' })
    const portal = await startTestGateway(t, [], {
      role: 'portal',
      auth: { tokenSecrets: [SECRET] },
      cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
    })
    for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${portal.port}/readyz`)).status !== 200; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const ff = await runPeer(
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://127.0.0.1:${portal.port}/demo?token=${signHmacToken(SECRET, '/demo', now() + 300)}`,
        '-t',
        '2',
        '-f',
        'null',
        '-'
      ],
      { timeoutMs: 30_000 }
    )
    t.equal(
      ff.code,
      0,
      `ffmpeg plays through portal and relay with the forwarded binding (stderr: ${ff.stderr.slice(0, 300)})`
    )
    const wrong = await runPeer(
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://127.0.0.1:${portal.port}/demo?token=${signHmacToken(SECRET, '/live/', now() + 300)}`,
        '-t',
        '1',
        '-f',
        'null',
        '-'
      ],
      { timeoutMs: 30_000 }
    )
    t.not(wrong.code, 0, 'ffmpeg with a token for another path is refused')
  }
)

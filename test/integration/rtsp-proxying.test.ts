/**
 * Reference §6 checks 24–31 (RTSP proxying) over real sockets. Check 28 (the gateway's own HTTP
 * auth on the GET) is not covered: the gateway does not implement HTTP auth yet. Check 30 is
 * covered in data-paths.test.ts (server requests to the client, FFmpeg's 200/501 replies back).
 */
import net from 'node:net'
import t from 'tap'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { findBackendAuthorityLeak } from '../../src/tunnel/codec/url-rewrite.js'
import {
  ScriptedBackend,
  digestAuthorization,
  dssScript,
  type BackendConn,
  type Script
} from '../helpers/scripted-backend.js'
import { settled, startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, destroyAllClients, frame, patternBytes, rtspRequest } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'

/** DSS-like, with its own channel choice (2-3…), absolute SDP controls, Content-Location,
 *  302 for …/moved, silence for …/silent, and `X-Delay: ms` delaying a reply (in order). */
function script (): Script {
  const dss = dssScript({
    interleavedBase: 2,
    absoluteControl: true,
    describeHeaders: (req, conn) => [
      ['Content-Location', `rtsp://${conn.backend.authority}${new URL(req.uri.replace(/^rtsp:/, 'http:')).pathname}/`]
    ],
    before: (req, conn) => {
      if (req.uri.includes('/silent')) return true
      if (req.method === 'DESCRIBE' && req.uri.includes('/moved')) {
        conn.respond(req, 302, 'Moved Temporarily', [
          ['Location', `rtsp://${conn.backend.authority}${req.uri.includes('/origin/') ? '/origin' : '/live'}/cam2`]
        ])
        return true
      }
      return false
    }
  })
  return (u, conn) => {
    // In-order server: a delayed reply holds every later one.
    const prev = (conn.state.chain as Promise<void> | undefined) ?? Promise.resolve()
    const delay = u.kind === 'request' ? Number(getHeader(u, 'X-Delay') ?? 0) : 0
    const next = prev.then(async () => {
      if (delay > 0) await new Promise(resolve => setTimeout(resolve, delay))
      if (u.kind === 'request') conn.state[`replied:${getHeader(u, 'CSeq')}`] = Date.now()
      dss(u, conn)
    })
    conn.state.chain = next
  }
}

const backend = await ScriptedBackend.start(script())
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend], { backend: { replyTimeoutMs: 800 } })
const gwMapped = await startTestGateway(t, [backend], { routes: [{ path: '/live', backendPath: '/origin' }] })
t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]); await settled(gwMapped, [backend]) })

const lastConn = (): BackendConn => backend.conns.at(-1)!

function sdpControls (body: Buffer): string[] {
  return [...body.toString('latin1').matchAll(/^a=control:(.*?)\r?$/gm)].map(m => m[1]!)
}

t.test('check 24: public ≠ backend URL — every URL mapped consistently, SDP length recomputed', async tt => {
  const tc = await TunnelClient.open(gwMapped.port, { url: 'rtsp://gw.example.net/live/cam1' })
  const d = await tc.request('DESCRIBE', tc.url, [['Accept', 'application/sdp']])
  const conn = lastConn()
  tt.equal(
    conn.requests().at(-1)!.uri,
    `rtsp://${backend.authority}/origin/cam1`,
    'Request-URI mapped to the backend path'
  )
  tt.equal(getHeader(d, 'Content-Base'), 'rtsp://gw.example.net/live/cam1/', 'Content-Base mapped')
  tt.equal(getHeader(d, 'Content-Location'), 'rtsp://gw.example.net/live/cam1/', 'Content-Location mapped')
  const controls = sdpControls(d.body)
  tt.same(
    controls,
    [
      'rtsp://gw.example.net/live/cam1/',
      'rtsp://gw.example.net/live/cam1/trackID=1',
      'rtsp://gw.example.net/live/cam1/trackID=2'
    ],
    'SDP absolute a=control mapped'
  )
  tt.equal(Number(getHeader(d, 'Content-Length')), d.body.length, 'Content-Length matches the rewritten SDP')
  tt.ok(d.body.length > 0, 'SDP present')
  let session = ''
  for (const ctl of controls.slice(1)) {
    const s = await tc.request('SETUP', ctl, [
      ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
      ...(session === '' ? [] : [['Session', session] as [string, string]])
    ])
    tt.equal(s.status, 200, `SETUP ${ctl}`)
    session = getHeader(s, 'Session')!.split(';')[0]!
  }
  tt.same(
    conn
      .requests()
      .filter(r => r.method === 'SETUP')
      .map(r => r.uri),
    [`rtsp://${backend.authority}/origin/cam1/trackID=1`, `rtsp://${backend.authority}/origin/cam1/trackID=2`],
    'SETUP URLs mapped to the backend'
  )
  for (const range of ['npt=0.000-', 'npt=10.000-']) {
    const p = await tc.request('PLAY', controls[0]!, [['Session', session], ['Range', range]])
    const urls = [...(getHeader(p, 'RTP-Info') ?? '').matchAll(/url=([^;,]+)/g)].map(m => m[1]!)
    tt.same(urls, controls.slice(1), `RTP-Info urls equal the SDP control URLs (${range}) — FFmpeg's exact match`)
    tt.match(
      getHeader(p, 'RTP-Info') ?? '',
      /seq=1000;rtptime=90000,url=\S+;seq=1001;rtptime=180000/,
      'seq/rtptime untouched'
    )
  }
  const moved = await tc.request('DESCRIBE', 'rtsp://gw.example.net/live/moved', [])
  tt.equal(moved.status, 302, '302 passed through')
  tt.equal(getHeader(moved, 'Location'), 'rtsp://gw.example.net/live/cam2', 'Location mapped')
  tt.notOk(findBackendAuthorityLeak(tc.get.allBytes, backend.authority), 'no backend authority in client-visible bytes')
  tc.close()
})

t.test('check 25: URL pass-through to a DSS-like backend leaks no backend host or port', async tt => {
  const tc = await TunnelClient.open(gw.port, { url: 'rtsp://gw.example.net:80/live/cam1' })
  const { session } = await tc.play()
  const conn = lastConn()
  await tc.request('PLAY', `${tc.url}/`, [['Session', session], ['Range', 'npt=20-']])
  await tc.request('DESCRIBE', 'rtsp://gw.example.net:80/live/moved', [])
  conn.send(rtspRequest('OPTIONS', `rtsp://${backend.authority}/live/cam1`, 900, [['Session', session]]))
  conn.send(
    rtspRequest('REDIRECT', `rtsp://${backend.authority}/live/cam1`, 901, [
      ['Location', `rtsp://${backend.authority}/live/cam9`]
    ])
  )
  conn.sendFrame(0, patternBytes(500, 1))
  await waitFor(() => tc.get.requests().length >= 2 && tc.get.frames().length >= 1, 'server requests and a frame')
  tt.equal(
    getHeader(tc.get.requests()[1]!, 'Location'),
    'rtsp://gw.example.net:80/live/cam9',
    'REDIRECT Location mapped'
  )
  await tc.request('TEARDOWN', `${tc.url}/`, [['Session', session]])
  const visible = tc.get.allBytes
  const text = visible.toString('latin1')
  tt.notOk(
    findBackendAuthorityLeak(visible, backend.authority),
    `no '${backend.authority}' in ${visible.length} client-visible bytes`
  )
  tt.notOk(text.includes('127.0.0.1'), 'no backend IP anywhere', {
    found: [...text.matchAll(/.{0,40}127\.0\.0\.1.{0,20}/g)].map(m => m[0])
  })
  tt.ok(text.includes('rtsp://gw.example.net:80/live/cam1/'), 'public URLs present instead')
  tc.close()
})

t.test(
  'check 26: Transport — backend interleaved choice passes through; UDP-only → 461; mixed → TCP only',
  async tt => {
    const tc = await TunnelClient.open(gw.port)
    await tc.request('DESCRIBE', tc.url, [['Accept', 'application/sdp']])
    const conn = lastConn()
    const udp = tc.build('SETUP', `${tc.url}/trackID=1`, [['Transport', 'RTP/AVP;unicast;client_port=5000-5001']])
    await tc.post.send(udp.bytes)
    const r461 = await tc.get.response(udp.cseq)
    tt.equal(r461.status, 461, 'UDP-only offer answered 461')
    tt.equal(getHeader(r461, 'CSeq'), String(udp.cseq), '461 echoes the client CSeq')
    tt.equal(
      conn.requests().filter(r => r.method === 'SETUP').length,
      0,
      'the UDP-only SETUP never reached the backend'
    )
    const s1 = await tc.request('SETUP', `${tc.url}/trackID=1`, [['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']])
    tt.equal(
      getHeader(s1, 'Transport'),
      'RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=6B8B4567',
      "backend's interleaved choice and ssrc unmodified"
    )
    const session = getHeader(s1, 'Session')!
    const s2 = await tc.request('SETUP', `${tc.url}/trackID=2`, [
      ['Session', session],
      ['Transport', 'RTP/AVP;unicast;client_port=5002-5003,RTP/AVP/TCP;unicast;interleaved=2-3']
    ])
    tt.equal(s2.status, 200, 'mixed offer accepted')
    tt.equal(
      conn.state.lastTransport,
      'RTP/AVP/TCP;unicast;interleaved=2-3',
      'backend received only the TCP alternative'
    )
    tt.equal(
      getHeader(s2, 'Transport'),
      'RTP/AVP/TCP;unicast;interleaved=4-5;ssrc=6B8B4567',
      'second reply unmodified too'
    )
    tc.close()
  }
)

t.test('check 27: backend digest passes through; Authorization forwarded byte-identical', async tt => {
  const digest = { realm: 'Streaming Server', nonce: 'a3f9c0de4b1e', user: 'alice', password: 's3cret' }
  const authBackend = await ScriptedBackend.start(dssScript({ digest }))
  tt.teardown(() => authBackend.close())
  for (const mapped of [false, true]) {
    const g = await startTestGateway(
      tt,
      [authBackend],
      mapped ? { routes: [{ path: '/live', backendPath: '/origin' }] } : {}
    )
    const tc = await TunnelClient.open(g.port)
    const name = mapped ? 'with request-line path rewriting' : 'with authority rewriting only'
    const r401 = await tc.request('DESCRIBE', tc.url, [['Accept', 'application/sdp']])
    tt.equal(r401.status, 401, `${name}: 401 passed through`)
    tt.equal(
      getHeader(r401, 'WWW-Authenticate'),
      `Digest realm="${digest.realm}", nonce="${digest.nonce}"`,
      `${name}: WWW-Authenticate unchanged`
    )
    const auth = (method: string, uri: string): string => digestAuthorization({ ...digest, method, uri })
    const d = await tc.request('DESCRIBE', tc.url, [
      ['Accept', 'application/sdp'],
      ['Authorization', auth('DESCRIBE', tc.url)]
    ])
    tt.equal(d.status, 200, `${name}: DESCRIBE with credentials accepted`)
    const conn = authBackend.conns.at(-1)!
    tt.equal(
      getHeader(conn.requests().at(-1)!, 'Authorization'),
      auth('DESCRIBE', tc.url),
      `${name}: Authorization byte-identical at the backend`
    )
    tt.ok(
      conn
        .requests()
        .at(-1)!
        .raw.toString('latin1')
        .includes(`\r\nAuthorization: ${auth('DESCRIBE', tc.url)}\r\n`),
      `${name}: header line identical on the wire`
    )
    const base = getHeader(d, 'Content-Base')!
    const s = await tc.request('SETUP', `${base}trackID=1`, [
      ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
      ['Authorization', auth('SETUP', `${base}trackID=1`)]
    ])
    tt.equal(s.status, 200, `${name}: SETUP authorized`)
    const session = getHeader(s, 'Session')!
    const p = await tc.request('PLAY', base, [['Session', session], ['Authorization', auth('PLAY', base)]])
    tt.equal(p.status, 200, `${name}: PLAY authorized`)
    conn.sendFrame(0, patternBytes(100, 2))
    await waitFor(() => tc.get.frames().length > 0, 'media after authorized PLAY')
    tc.close()
    await settled(g, [authBackend])
  }
})

t.test('check 29: gateway-originated errors — 503, 504, 454, 551, 505', async tt => {
  // Backend unreachable: a port nobody listens on.
  const dead = await new Promise<number>(resolve => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
  const gDead = await startTestGateway(tt, [`rtsp://127.0.0.1:${dead}`])
  const tcDead = await TunnelClient.open(gDead.port)
  tt.equal(tcDead.get.head!.statusLine, 'HTTP/1.0 200 OK', 'tunnel opens although the backend is unreachable')
  const r503 = await tcDead.request('OPTIONS', tcDead.url, [], { timeoutMs: 6000 })
  tt.equal(r503.status, 503, 'first request answered 503')
  tt.equal(getHeader(r503, 'CSeq'), '1', '503 echoes CSeq')
  tt.ok(getHeader(r503, 'Retry-After') !== undefined, '503 carries Retry-After')
  tcDead.close()
  await settled(gDead)

  const tc = await TunnelClient.open(gw.port)
  const r454 = await tc.request('PLAY', tc.url, [['Session', '999999']])
  tt.equal(r454.status, 454, 'unknown Session → 454')
  const r551 = await tc.request('OPTIONS', tc.url, [['Proxy-Require', 'x-foo']])
  tt.equal(r551.status, 551, 'Proxy-Require: x-foo → 551')
  tt.equal(getHeader(r551, 'Unsupported'), 'x-foo', '551 lists the option in Unsupported')
  const v2 = tc.build('OPTIONS', tc.url)
  await tc.post.send(rtspRequest('OPTIONS', tc.url, v2.cseq, [], '', 'RTSP/2.0'))
  const r505 = await tc.get.response(v2.cseq)
  tt.equal(r505.status, 505, 'RTSP/2.0 request → 505')
  tt.equal(backend.conns.filter(c => !c.closed).length, 0, 'none of those needed the backend')
  const t0 = Date.now()
  const r504 = await tc.request('DESCRIBE', 'rtsp://gw.example.net/live/silent', [], { timeoutMs: 3000 })
  tt.equal(r504.status, 504, `silent backend → 504 after ${Date.now() - t0} ms`)
  tt.equal(getHeader(r504, 'CSeq'), String(tc.cseq), '504 echoes CSeq')
  tt.equal((await tc.request('OPTIONS')).status, 200, 'tunnel usable after the 504')
  tc.close()
})

t.test('check 31: OPTIONS * and pipelined requests; replies keep order', async tt => {
  const tc = await TunnelClient.open(gw.port)
  const star = await tc.request('OPTIONS', '*')
  tt.equal(star.status, 200, 'OPTIONS * answered')
  tt.match(getHeader(star, 'Public') ?? '', /DESCRIBE/, 'with a Public list')
  const { session } = await tc.play()
  const conn = lastConn()
  // PLAY whose reply the backend delays, a keepalive right behind it, and one the gateway answers itself.
  const play = tc.build('PLAY', `${tc.url}/`, [['Session', session], ['Range', 'npt=30-'], ['X-Delay', '300']])
  const keep = tc.build('GET_PARAMETER', `${tc.url}/`, [['Session', session]])
  const own = tc.build('OPTIONS', tc.url, [['Proxy-Require', 'x-foo']])
  await tc.post.sendRaw(Buffer.concat([play.bytes, keep.bytes, own.bytes].map(b => Buffer.from(b.toString('base64')))))
  const keepAtBackend = await conn.waitUnits(u => u.kind === 'request' && getHeader(u, 'CSeq') === String(keep.cseq))
  tt.ok(
    keepAtBackend.length === 1 && conn.state[`replied:${play.cseq}`] === undefined,
    'keepalive forwarded while the PLAY reply was still pending'
  )
  const order: number[] = []
  for (const c of [play.cseq, keep.cseq, own.cseq]) await tc.get.response(c, 3000)
  for (const r of tc.get.responses()) {
    const c = Number(getHeader(r, 'CSeq'))
    if ([play.cseq, keep.cseq, own.cseq].includes(c)) order.push(c)
  }
  tt.same(
    order,
    [play.cseq, keep.cseq, own.cseq],
    'replies in backend (= request) order, the gateway’s own 551 after them'
  )
  tt.equal((await tc.get.response(own.cseq)).status, 551, '551 for the pipelined Proxy-Require')
  conn.send(frame(2, patternBytes(10, 1)))
  await waitFor(() => tc.get.frames().length > 0, 'media after the pipelined PLAY')
  tc.close()
})

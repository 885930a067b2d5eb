/**
 * Portal → relay trust, tried as an attacker would: a relay node (role relay) behind a portal, with a
 * tap between them that records what the portal sends. Straight to the relay node: forged
 * X-Tunnelgate-Client / -Path headers with no proof, a replayed captured proof, a stale one, one
 * signed with a wrong secret, a garbage preamble on plain RTSP, and valid proofs for another leg are
 * all refused (403 / RTSP 403 / close), logged and counted, and nothing is dialled; a fresh proof
 * made with the secret is accepted (so the refusals are the checks'). Through the portal: tunnels and
 * plain RTSP (a real ffmpeg) play and the relay sees the client's own address; a client's own
 * X-Tunnelgate-* headers change nothing. Cluster reads on the relay's tunnel port: 404 unsigned, 403
 * badly signed or replayed, 200 signed.
 */
import net from 'node:net'
import t from 'tap'
import pino from 'pino'
import { startOrigin } from '../../src/origin/index.js'
import {
  FORWARD_HEADER,
  PREAMBLE,
  newNonce,
  signForward,
  verifyForward,
  type ForwardClaims
} from '../../src/tunnel/codec/forward-proof.js'
import { ForwardSigner } from '../../src/core/forward-signer.js'
import {
  rtspRequest,
  connect,
  exchangeRaw,
  getStatusLine,
  newCookie,
  destroyAllClients,
  GetLeg,
  PostLeg
} from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'
import { metric, startTestGateway, TEST_CLUSTER_SECRET } from '../helpers/gateway-harness.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { runPeer } from '../helpers/peers.js'
import { RtspDemuxer } from '../../src/tunnel/codec/demux.js'

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
const relay = await startTestGateway(t, [backend], { role: 'relay' })

/** Portal → relay connections pass through here; the first bytes of each are kept, and the first 64 KiB of all. */
const captured: Buffer[] = []
let tapped = ''
const tap = net.createServer(c => {
  const up = net.connect(relay.port, '127.0.0.1')
  let first = true
  c.on('data', d => {
    if (first) { captured.push(Buffer.from(d)); first = false }
    if (tapped.length < 65_536) tapped += d.toString('latin1')
  })
  c.pipe(up)
  up.pipe(c)
  c.on('error', () => up.destroy())
  up.on('error', () => c.destroy())
  c.on('close', () => up.destroy())
  up.on('close', () => c.destroy())
})
await new Promise<void>(resolve => tap.listen(0, '127.0.0.1', () => resolve()))
t.teardown(() => { tap.close() })
const tapPort = (tap.address() as net.AddressInfo).port
const portal = await startTestGateway(t, [], {
  role: 'portal',
  cluster: { relays: [`127.0.0.1:${tapPort}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
})
t.afterEach(() => { destroyAllClients() })

const untrusted = async (reason: string): Promise<number> =>
  await metric(relay, 'tunnelgate_relay_untrusted_total', { reason })
const CAM = 'rtsp://gw.example.net/live/cam1'

const raw = exchangeRaw

const getHead = (cookie: string, extra = ''): string =>
  `GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nAccept: application/x-rtsp-tunnelled\r\n${extra}\r\n`
const postHead = (cookie: string, extra = ''): string =>
  `POST /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n${extra}\r\n`
const wsHead =
  'GET /rtsp-over-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n'
const preamble = (proof: string): string => `${PREAMBLE}${proof}\r\n`
const claims = (over: Partial<ForwardClaims>): ForwardClaims => ({
  kind: 'get',
  client: '6.6.6.6',
  path: '/',
  ts: Date.now(),
  nonce: newNonce(),
  ...over
})

t.test(
  "through the portal: the relay node sees the client's own address; " +
  "the client's X-Tunnelgate-* headers change nothing",
  async t => {
    const cookie = newCookie()
    const forged: Array<[string, string]> = [
      ['X-Tunnelgate-Client', '6.6.6.6'],
      ['X-Tunnelgate-Path', '%2Fnowhere'],
      ['X-Tunnelgate-Forward', 'tgf1.forged.forged']
    ]
    const get = new GetLeg(await connect(portal.port, '127.0.0.1', '127.0.0.7'), cookie)
    await get.write(getHead(cookie, forged.map(([k, v]) => `${k}: ${v}\r\n`).join('')))
    t.equal(await getStatusLine(get), 'HTTP/1.0 200 OK', 'the GET is served through the portal')
    const post = new PostLeg(await connect(portal.port, '127.0.0.1', '127.0.0.7'), cookie)
    await post.write(postHead(cookie, 'X-Tunnelgate-Pair: known-only\r\nX-Tunnelgate-Client: 6.6.6.6\r\n'))
    await post.send(rtspRequest('DESCRIBE', CAM, 1))
    t.equal(
      (await get.response(1, 5000)).status,
      200,
      'DESCRIBE of /live/cam1 answered (the forged path binding /nowhere did nothing)'
    )
    const s = await waitFor(
      () => relay.relay.listTunnels().find(x => x.transport === 'http-tunnel'),
      'the session at the relay node'
    )
    t.equal(s.client, '127.0.0.7', 'the relay node has the address the portal saw, not the forged one')
    const sent = Buffer.concat(captured).toString('latin1')
    t.notMatch(sent, /6\.6\.6\.6|nowhere|tgf1\.forged/, "the client's copies never reached the relay node")
    // What is not a leg is the portal's own: its /healthz probes and its signed /status/summary reads.
    const legs = captured.filter(c => !/^GET \/(healthz|status\/summary) HTTP/.test(c.toString('latin1')))
    t.ok(
      legs.length >= 2 && legs.every(c => c.toString('latin1').startsWith(PREAMBLE)),
      `every forwarded leg starts with a signed preamble (${legs.length})`
    )
    await portal.ops.feed.sample()
    const reads = tapped.split(/(?=GET \/status\/summary HTTP)/).filter(x => x.startsWith('GET /status/summary'))
    t.ok(
      reads.length >= 1 &&
        reads.every(r => new RegExp(`^${FORWARD_HEADER}: tgf1\\.`, 'im').test(r.slice(0, r.indexOf('\r\n\r\n')))),
      `its summary reads are signed (${reads.length})`
    )
    get.destroy()
    post.destroy()

    // Plain RTSP has no head: the preamble carries its client address.
    const r = await connect(portal.port, '127.0.0.1', '127.0.0.8')
    const demux = new RtspDemuxer()
    const units: unknown[] = []
    r.on('data', d => {
      for (const u of demux.push(d)) units.push(u)
    })
    r.write(rtspRequest('DESCRIBE', CAM, 1))
    await waitFor(() => units.length > 0, 'the plain RTSP answer', 5000)
    const plain = await waitFor(
      () => relay.relay.listTunnels().find(x => x.transport === 'rtsp'),
      'the plain RTSP session at the relay node'
    )
    t.equal(plain.client, '127.0.0.8', 'a plain RTSP leg carries its client address now')
    r.destroy()
    t.equal(
      await untrusted('missing') + await untrusted('mismatch') + await untrusted('replayed'),
      0,
      'nothing the portal sent was refused'
    )
  }
)

t.test(
  'straight to the relay node without a proof: GET, POST, POST hand-shake, WebSocket and plain RTSP are refused',
  async t => {
    const dialled = backend.conns.length
    const before = await untrusted('missing')
    const errs = await metric(relay, 'tunnelgate_errors_total', { code: 'TG_ERR_RELAY_UNTRUSTED' })
    const forged = 'X-Tunnelgate-Client: 10.9.8.7\r\nX-Tunnelgate-Path: %2F\r\n'
    const cookie = newCookie()
    t.match(await raw(relay.port, getHead(cookie, forged)), /^HTTP\/1\.[01] 403/, 'GET with forged headers: 403')
    t.match(await raw(relay.port, postHead(cookie, forged)), /^HTTP\/1\.[01] 403/, 'POST: 403')
    t.match(
      await raw(relay.port, postHead(cookie, 'X-Tunnelgate-Pair: known-only\r\n')),
      /^HTTP\/1\.[01] 403/,
      'POST hand-shake: 403 (not 202 or 421: no cookie probing)'
    )
    t.match(await raw(relay.port, wsHead), /^HTTP\/1\.[01] 403/, 'WebSocket upgrade: 403')
    t.match(await raw(relay.port, rtspRequest('DESCRIBE', CAM, 1)), /^RTSP\/1\.0 403/, 'plain RTSP: RTSP 403')
    t.equal(await untrusted('missing') - before, 5, 'five refusals counted as missing')
    t.equal(
      await metric(relay, 'tunnelgate_errors_total', { code: 'TG_ERR_RELAY_UNTRUSTED' }) - errs,
      5,
      'and as TG_ERR_RELAY_UNTRUSTED'
    )
    t.equal(relay.relay.activeSessions, 0, 'no session opened')
    t.equal(backend.conns.length, dialled, 'nothing dialled')
  }
)

t.test(
  'a replayed, stale, wrongly signed or garbage proof, or one for another leg, is refused; a fresh one is not',
  async t => {
    const dialled = backend.conns.length
    const snap = async (): Promise<Record<string, number>> =>
      Object.fromEntries(
        await Promise.all(
          ['replayed', 'stale', 'bad-signature', 'malformed', 'mismatch'].map(async r => [r, await untrusted(r)])
        )
      )
    const before = await snap()
    // Replay: the tap's capture of a GET the portal forwarded in the first test, sent again as it was.
    const getCapture = captured.find(c => {
      const p = /^TUNNELGATE-FORWARD (\S+)\r\n/.exec(c.toString('latin1'))
      if (p === null) return false
      const v = verifyForward(p[1]!, [TEST_CLUSTER_SECRET], Date.now(), 60_000)
      return v.ok && v.claims.kind === 'get'
    })
    t.ok(getCapture !== undefined, 'a captured GET with its proof')
    t.equal(await raw(relay.port, getCapture!), '', 'replayed: closed, nothing answered')
    const cookie = newCookie()
    t.equal(
      await raw(
        relay.port,
        preamble(signForward(TEST_CLUSTER_SECRET, claims({ cookie, ts: Date.now() - 120_000 }))) + getHead(cookie)
      ),
      '',
      'stale (2 min old): closed'
    )
    t.equal(
      await raw(
        relay.port,
        preamble(signForward(TEST_CLUSTER_SECRET, claims({ cookie, ts: Date.now() + 120_000 }))) + getHead(cookie)
      ),
      '',
      'from the future: closed'
    )
    t.equal(
      await raw(relay.port, preamble(signForward('not-the-cluster-secret-0', claims({ cookie }))) + getHead(cookie)),
      '',
      'wrong secret: closed'
    )
    t.equal(
      await raw(relay.port, preamble('tgf1.not-a-proof') + rtspRequest('DESCRIBE', CAM, 1)),
      '',
      'a forged preamble on plain RTSP: closed'
    )
    t.equal(await raw(relay.port, PREAMBLE + 'x'.repeat(4000)), '', 'a preamble that never ends: closed')
    // Valid proofs, each for another leg than the one it comes with.
    t.match(
      await raw(
        relay.port,
        preamble(signForward(TEST_CLUSTER_SECRET, claims({ cookie: newCookie() }))) + getHead(cookie)
      ),
      /^HTTP\/1\.[01] 403/,
      'a GET proof for another cookie: 403'
    )
    t.match(
      await raw(relay.port, preamble(signForward(TEST_CLUSTER_SECRET, claims({ cookie }))) + postHead(cookie)),
      /^HTTP\/1\.[01] 403/,
      'a GET proof on a POST: 403'
    )
    t.match(
      await raw(
        relay.port,
        preamble(signForward(TEST_CLUSTER_SECRET, claims({ kind: 'post', cookie }))) +
          postHead(cookie, 'X-Tunnelgate-Pair: known-only\r\n')
      ),
      /^HTTP\/1\.[01] 403/,
      'a POST proof on a hand-shake: 403'
    )
    t.match(
      await raw(
        relay.port,
        preamble(signForward(TEST_CLUSTER_SECRET, claims({ cookie }))) + rtspRequest('DESCRIBE', CAM, 1)
      ),
      /^RTSP\/1\.0 403/,
      'a GET proof on plain RTSP: RTSP 403'
    )
    const after = await snap()
    t.same(
      Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k]!])),
      { replayed: 1, stale: 2, 'bad-signature': 1, malformed: 2, mismatch: 4 },
      'each refusal counted under its reason'
    )
    t.equal(backend.conns.length, dialled, 'nothing dialled')
    // Control: a fresh proof with the secret is believed (client address and all).
    const ok = await connect(relay.port)
    const leg = new GetLeg(ok, cookie)
    await leg.write(
      preamble(signForward(TEST_CLUSTER_SECRET, claims({ cookie, client: '192.0.2.44', path: '/live/' }))) +
        getHead(cookie)
    )
    t.equal(await getStatusLine(leg), 'HTTP/1.0 200 OK', 'a fresh, well signed proof for this GET: served')
    const s = await waitFor(
      () => relay.relay.listTunnels().find(x => x.client === '192.0.2.44'),
      'the vouched-for session'
    )
    t.equal(s.path, '/live/cam1', 'with the address the proof names')
    leg.destroy()
  }
)

t.test('cluster reads on the relay node\'s tunnel port: signed only', async t => {
  const ops = ['/metrics', '/status/summary']
  const notFound = await fetch(`http://127.0.0.1:${relay.port}/no-such-path`)
  const notFoundBody = await notFound.text()
  for (const path of ops) {
    const r = await fetch(`http://127.0.0.1:${relay.port}${path}`)
    t.equal(r.status, 404, `${path} unsigned: 404`)
    t.equal((await r.text()).replace(path, '/no-such-path'), notFoundBody, `${path}: the same 404 as any unknown path`)
    const bad = await fetch(`http://127.0.0.1:${relay.port}${path}`, {
      headers: {
        [FORWARD_HEADER]: signForward(
          'not-the-cluster-secret-0',
          claims({ kind: 'read', client: '', target: `GET ${path}` })
        )
      }
    })
    t.equal(bad.status, 403, `${path} signed with a wrong secret: 403`)
    t.equal(((await bad.json()) as { error: { code: string } }).error.code, 'TG_ERR_RELAY_UNTRUSTED')
  }
  const signer = new ForwardSigner(TEST_CLUSTER_SECRET)
  const headers = signer.readHeaders('/metrics')
  const good = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers })
  t.equal(good.status, 200, 'signed /metrics: 200')
  t.match(await good.text(), /^tunnelgate_tunnels_active /m)
  t.equal(
    (await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers })).status,
    403,
    'the same proof again: 403 (replayed)'
  )
  t.equal(
    (await fetch(`http://127.0.0.1:${relay.port}/status/summary`, { headers: signer.readHeaders('/metrics') })).status,
    403,
    'a /metrics proof on /status/summary: 403'
  )
  const summary = await fetch(`http://127.0.0.1:${relay.port}/status/summary`, {
    headers: signer.readHeaders('/status/summary')
  })
  t.equal(summary.status, 200, 'signed /status/summary: 200')
  t.ok(Array.isArray(((await summary.json()) as { relays: unknown[] }).relays))
  const sample = await portal.ops.feed.sample()
  t.same(
    sample.relays.map(r => [r.id, r.up, typeof r.tunnels]),
    [[`127.0.0.1:${tapPort}`, true, 'number']],
    "the portal's status page reads the relay node (signed)"
  )
})

t.test('real ffmpeg through portal and relay node: the HTTP tunnel and plain RTSP play', async t => {
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) })
  t.teardown(() => origin.close())
  const r = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], { role: 'relay' })
  const p = await startTestGateway(t, [], {
    role: 'portal',
    cluster: { relays: [`127.0.0.1:${r.port}`], probeIntervalMs: 200 }
  })
  for (const transport of ['http', 'tcp']) {
    const ff = await runPeer(
      'ffmpeg',
      [
        '-v',
        'error',
        '-rtsp_transport',
        transport,
        '-i',
        `rtsp://127.0.0.1:${p.port}/demo`,
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
      `ffmpeg -rtsp_transport ${transport} plays through the portal (stderr: ${ff.stderr.slice(0, 300)})`
    )
  }
  t.equal(await metric(r, 'tunnelgate_legs_total', { leg: 'rtsp' }), 1, 'the plain RTSP leg reached the relay node')
  t.equal(await metric(r, 'tunnelgate_errors_total', { code: 'TG_ERR_RELAY_UNTRUSTED' }), 0, 'nothing refused')
  // Straight to the relay node the same player is refused.
  const direct = await runPeer(
    'ffmpeg',
    ['-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${r.port}/demo`, '-t', '1', '-f', 'null', '-'],
    { timeoutMs: 30_000 }
  )
  t.not(direct.code, 0, 'ffmpeg straight to the relay node does not play')
  t.ok(
    await metric(r, 'tunnelgate_relay_untrusted_total', { reason: 'missing' }) >= 1,
    'its GET was refused and counted'
  )
})

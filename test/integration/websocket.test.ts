/**
 * RTSP over WebSocket through the gateway with a Node client (the `ws` package speaking raw
 * RTSP in binary messages, as media-stream-library does), against the embedded origin and a
 * scripted DSS-like backend:
 *  - VOD /demo: OPTIONS, DESCRIBE (SDP with profile-level-id + sprop-parameter-sets, alone in its
 *    message, URLs rewritten to the gateway), SETUP ×2, PLAY, PAUSE (no RTP for 1 s), seek
 *    (PLAY Range npt=8-), TEARDOWN; live /live/demo plays, client closes without TEARDOWN;
 *  - every RTSP response arrives in a message of its own; `$` frames never split;
 *  - server-originated requests are answered by the gateway, never forwarded to the WS client;
 *  - handshake refusals (subprotocol, version), frame violations (unmasked → 1002, oversize → 1009);
 *  - tokens: none → 401, token for /demo opens /demo only (RTSP 403 for another path);
 *  - limits.maxTunnels → 503; local worker mode (socket handed to a worker) plays too;
 *  - metrics carry transport="websocket"; sessions, gauges and backend connections back to zero.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'
import { encodeFrame, OP_BINARY } from '../../src/tunnel/codec/websocket-frame.js'
import { startTestGateway, metric, errorCount } from '../helpers/gateway-harness.js'
import { establishedTo } from '../helpers/interop.js'
import { waitFor } from '../helpers/wait.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { WsRtspClient } from '../helpers/ws-rtsp-client.js'

const quietLog = { info () {}, warn () {}, error () {} }
let origin: OriginHandle
let gw: Gateway

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  gw = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], { workers: 0 })
})
t.teardown(async () => { await origin.close() })

async function quiet (tt: Test, g: Gateway, backendPort: number): Promise<void> {
  const s = await waitFor(async () => ({
    active: await metric(g, 'tunnelgate_tunnels_active'),
    sessions: g.relay.activeSessions,
    backendSessions: await metric(g, 'tunnelgate_backend_sessions'),
    conns: establishedTo(backendPort)
  }), v => v.active === 0 && v.sessions === 0 && v.backendSessions === 0 && v.conns === 0, 8000)
  tt.same(s, { active: 0, sessions: 0, backendSessions: 0, conns: 0 }, 'no session, gauge or backend connection left')
}

t.test('VOD /demo: play, pause, seek, teardown over WebSocket', async tt => {
  const c = await WsRtspClient.open(gw.port)
  tt.equal(c.ws.protocol, 'binary', 'subprotocol binary echoed')
  const url = `rtsp://127.0.0.1:${gw.port}/demo`
  const d = await c.setup(url)
  tt.equal(d.status, 200, 'DESCRIBE 200')
  const sdp = d.body.toString('latin1')
  tt.match(
    sdp,
    /a=fmtp:\d+ packetization-mode=1;profile-level-id=[0-9a-f]{6};sprop-parameter-sets=[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+/,
    'SDP has profile-level-id and sprop-parameter-sets'
  )
  tt.equal(d.message.length, d.raw.length, 'nothing follows the SDP body in its message')
  tt.equal(d.header('Content-Base'), `${url}/`, 'Content-Base rewritten to the gateway')
  tt.notMatch(sdp, new RegExp(`:${origin.port}`), 'no backend address in the SDP')
  const play = await c.request('PLAY', url, { Range: 'npt=0-' })
  tt.equal(play.status, 200, 'PLAY 200')
  await waitFor(() => c.frameCount(0), n => n >= 50, 8000)
  tt.ok(
    c.frameCount(0) >= 50 && c.frameCount(2) >= 10,
    `video ${c.frameCount(0)} and audio ${c.frameCount(2)} RTP packets`
  )
  const pause = await c.request('PAUSE', url)
  tt.equal(pause.status, 200, 'PAUSE 200')
  await new Promise(resolve => setTimeout(resolve, 300))
  const before = c.frameCount()
  await new Promise(resolve => setTimeout(resolve, 1000))
  tt.equal(c.frameCount(), before, 'no RTP for 1 s while paused')
  const seek = await c.request('PLAY', url, { Range: 'npt=8-' })
  tt.equal(seek.status, 200, 'seek PLAY 200')
  tt.match(
    seek.header('Range') ?? '',
    /^npt=[78]\.\d+-12\.0+$/,
    `Range ${seek.header('Range') ?? ''}: playback from about 8 s`
  )
  await waitFor(() => c.frameCount(), n => n >= before + 30, 8000)
  tt.ok(c.frameCount() > before, 'RTP flows again after the seek')
  const td = await c.request('TEARDOWN', url)
  tt.equal(td.status, 200, 'TEARDOWN 200')
  tt.same(c.badMessages, [], 'every message was one whole response or whole $ frames')
  c.close()
  tt.equal(await c.closed, 1000, 'closed normally')
  await quiet(tt, gw, origin.port)
  tt.ok(
    await metric(gw, 'tunnelgate_tunnels_total', { transport: 'websocket' }) >= 1,
    'tunnels_total{transport="websocket"}'
  )
  tt.ok(
    await metric(gw, 'tunnelgate_legs_total', { leg: 'websocket', transport: 'websocket' }) >= 1,
    'legs_total{leg="websocket"}'
  )
})

t.test('live /live/demo plays; closing the WebSocket tears the backend session down', async tt => {
  const c = await WsRtspClient.open(gw.port, { protocol: 'rtsp.onvif.org' })
  tt.equal(c.ws.protocol, 'rtsp.onvif.org', 'ONVIF subprotocol echoed')
  const url = `rtsp://127.0.0.1:${gw.port}/live/demo`
  const d = await c.setup(url)
  tt.equal(d.status, 200)
  tt.match(d.body.toString(), /a=range:npt=now-/, 'live SDP')
  tt.equal((await c.request('PLAY', url)).status, 200)
  await waitFor(() => c.rtpTimes.get(0), v => v !== undefined && ((v.last - v.first) >>> 0) >= 2 * 90000, 10000)
  const v = c.rtpTimes.get(0)!
  tt.ok(((v.last - v.first) >>> 0) >= 2 * 90000, 'video RTP timestamps advanced by ≥ 2 s')
  tt.same(c.badMessages, [])
  c.ws.terminate()
  await quiet(tt, gw, origin.port)
  const sessions = await waitFor(
    async () =>
      (await origin.registry.getSingleMetric('tunnelgate_origin_sessions')!.get()).values.reduce(
        (s, x) => s + x.value,
        0
      ),
    n => n === 0,
    5000
  )
  tt.equal(sessions, 0, 'the origin has no session left (TEARDOWN on client loss)')
})

t.test('server-originated RTSP requests are answered by the gateway, never sent to the WebSocket', async tt => {
  const answered: string[] = []
  const be = await ScriptedBackend.start(
    dssScript({
      before: (req, conn) => {
        if (req.method === 'PLAY') {
          conn.respond(req, 200, 'OK', [
            ['Session', '7368154426419384412'],
            ['Range', 'npt=0-']
          ])
          conn.send('GET_PARAMETER rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 901\r\nSession: 7368154426419384412\r\n\r\n')
          conn.send('ANNOUNCE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 902\r\n\r\n')
          conn.send(Buffer.concat([Buffer.from([0x24, 0, 0, 12]), Buffer.alloc(12, 0x80)]))
          return true
        }
        return false
      },
      other: u => {
        if (u.kind === 'response') answered.push(`${u.status} ${u.headers.find(([k]) => k === 'CSeq')?.[1] ?? ''}`)
      }
    })
  )
  const g = await startTestGateway(tt, [be], { workers: 0 })
  tt.teardown(async () => { await be.close() })
  const c = await WsRtspClient.open(g.port)
  const url = `rtsp://127.0.0.1:${g.port}/cam`
  await c.setup(url)
  tt.equal((await c.request('PLAY', url)).status, 200)
  await waitFor(() => answered.length, n => n >= 2, 5000)
  tt.same(
    answered.sort(),
    ['200 901', '501 902'],
    'backend got 200 for GET_PARAMETER and 501 for ANNOUNCE from the gateway'
  )
  await waitFor(() => c.frameCount(0), n => n >= 1, 3000)
  tt.same(c.badMessages, [], 'the client saw only responses and frames')
  tt.notOk(
    c.messages.some(m => /^(GET_PARAMETER|ANNOUNCE) /.test(m.toString('latin1', 0, 20))),
    'no request reached the client'
  )
  c.close()
  await c.closed
  await quiet(tt, g, be.port)
})

t.test('handshake and frame errors are refused with codes and close codes', async tt => {
  const before = await errorCount(gw, 'TG_ERR_WS_HANDSHAKE')
  tt.equal(await WsRtspClient.refused(gw.port, { protocol: 'chat' }), 400, 'unsupported subprotocol → 400')
  tt.equal(await WsRtspClient.refused(gw.port, { wsOptions: { protocolVersion: 8 } }), 426, 'version 8 → 426')
  tt.equal(await errorCount(gw, 'TG_ERR_WS_HANDSHAKE'), before + 2, 'TG_ERR_WS_HANDSHAKE counted twice')
  tt.equal(
    await WsRtspClient.refused(gw.port, { path: '/other-path' }),
    404,
    'another path is ordinary HTTP (404 from the web surface)'
  )

  // A raw client: an unmasked frame after a valid handshake → close 1002.
  const raw = async (payload: Buffer): Promise<Buffer> => {
    const s = net.connect(gw.port, '127.0.0.1')
    const chunks: Buffer[] = []
    s.on('data', d => chunks.push(d))
    await new Promise(resolve => s.once('connect', resolve))
    s.write(
      'GET /rtsp-over-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      'Sec-WebSocket-Protocol: binary\r\n\r\n'
    )
    await waitFor(
      () => Buffer.concat(chunks).includes('\r\n\r\n'),
      v => v,
      3000,
      10
    )
    s.write(payload)
    await new Promise(resolve => s.once('close', resolve))
    const all = Buffer.concat(chunks)
    return all.subarray(all.indexOf('\r\n\r\n') + 4)
  }
  const e1 = await errorCount(gw, 'TG_ERR_WS_PROTOCOL')
  const close1 = await raw(encodeFrame(OP_BINARY, Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n')))
  tt.same([close1[0], close1.readUInt16BE(2)], [0x88, 1002], 'unmasked frame → close frame 1002')
  tt.equal(await errorCount(gw, 'TG_ERR_WS_PROTOCOL'), e1 + 1, 'TG_ERR_WS_PROTOCOL counted')
  const e2 = await errorCount(gw, 'TG_ERR_WS_TOO_LARGE')
  // a 1 MiB message announced, over limits.wsMessageBytes
  const big = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4])
  const close2 = await raw(big)
  tt.same([close2[0], close2.readUInt16BE(2)], [0x88, 1009], 'oversized message → close frame 1009')
  tt.equal(await errorCount(gw, 'TG_ERR_WS_TOO_LARGE'), e2 + 1, 'TG_ERR_WS_TOO_LARGE counted')
  await quiet(tt, gw, origin.port)
})

t.test('tokens bind a WebSocket to one stream path; limits apply; local workers serve WebSockets', async tt => {
  const secret = 'watch-secret-0123456789'
  const g = await startTestGateway(tt, [`rtsp://127.0.0.1:${origin.port}`], {
    workers: 0,
    auth: { tokenSecrets: [secret] },
    limits: { maxTunnels: 1 }
  })
  tt.equal(await WsRtspClient.refused(g.port), 401, 'no token → 401')
  tt.equal(await WsRtspClient.refused(g.port, { query: 'token=tg1.1.x.y' }), 401, 'bad token → 401')
  const token = signHmacToken(secret, '/demo', Math.floor(Date.now() / 1000) + 600)
  const c = await WsRtspClient.open(g.port, { query: `token=${encodeURIComponent(token)}` })
  const other = await c.request('DESCRIBE', `rtsp://127.0.0.1:${g.port}/live/demo`)
  tt.equal(other.status, 403, 'RTSP 403 for a path outside the token')
  tt.equal(establishedTo(origin.port), 0, 'nothing dialled for it')
  tt.equal((await c.setup(`rtsp://127.0.0.1:${g.port}/demo`)).status, 200, 'the token\'s stream plays')
  tt.equal(
    await WsRtspClient.refused(g.port, { query: `token=${encodeURIComponent(token)}` }),
    503,
    'limits.maxTunnels = 1: a second WebSocket gets 503'
  )
  c.close()
  await c.closed
  await quiet(tt, g, origin.port)

  const w = await startTestGateway(tt, [`rtsp://127.0.0.1:${origin.port}`], { workers: 1 })
  const wc = await WsRtspClient.open(w.port)
  const url = `rtsp://127.0.0.1:${w.port}/demo`
  tt.equal((await wc.setup(url)).status, 200, 'worker mode: DESCRIBE 200 (socket handed to the worker)')
  tt.equal((await wc.request('PLAY', url)).status, 200)
  await waitFor(() => wc.frameCount(0), n => n >= 20, 8000)
  tt.ok(wc.frameCount(0) >= 20, 'worker mode: RTP flows')
  tt.equal(w.relay.activeSessions, 0, 'the portal process holds no session (the worker does)')
  wc.close()
  await wc.closed
  const m = await waitFor(
    async () => await w.workers!.metricsText(w.metrics),
    text => /tunnelgate_tunnels_total\{[^}]*transport="websocket"[^}]*\} 1/.test(text),
    5000
  )
  tt.match(
    m,
    /tunnelgate_tunnels_total\{[^}]*transport="websocket"[^}]*\} 1/,
    'worker metrics: one websocket tunnel closed'
  )
  await waitFor(() => establishedTo(origin.port), n => n === 0, 5000)
})

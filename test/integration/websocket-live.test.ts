/**
 * WebSocket clients of a live fan-out path (routes[].live: true): the relay answers them itself
 * (src/live/), and their DESCRIBE reply must carry the 2-byte AAC config media-stream-library
 * needs, exactly as for proxied (VOD) paths (codec/sdp/browser.ts, applied in WebSocketClient.write):
 *  - a `ws` client DESCRIBEs /live/demo on a `live: true` route: the SDP is the live fan-out's
 *    (a=range:npt=now-, tunnelgate_live_viewers 1), the audio fmtp says `config=1190`, the
 *    Content-Length matches the reduced body, the response is alone in its message; it plays
 *    (video and audio RTP through the shared upstream session);
 *  - the same path over an HTTP tunnel (not a browser) keeps the origin's 5-byte config, and that
 *    5-byte config is what the origin itself sends (so the reduction is the WebSocket side's);
 *  - a second WebSocket viewer joining the running live path gets the same reduced SDP.
 */
import t from 'tap'
import net from 'node:net'
import { RtspDemuxer } from '../../src/tunnel/codec/demux.js'
import type { RtspResponse } from '../../src/tunnel/codec/rtsp-message.js'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { startTestGateway, metric } from '../helpers/gateway-harness.js'
import { TunnelClient } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'
import { WsRtspClient } from '../helpers/ws-rtsp-client.js'

const quietLog = { info () {}, warn () {}, error () {} }
let origin: OriginHandle
let gw: Gateway

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  gw = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], {
    workers: 0,
    routes: [{ path: '/', backends: [] }, { path: '/live', backends: [], live: true }],
    live: { lingerMs: 200 }
  })
})
t.teardown(async () => { await origin.close() })

/** DESCRIBE over plain RTSP/TCP (the embedded origin does not terminate the HTTP tunnel). */
async function plainDescribe (port: number, path: string): Promise<RtspResponse> {
  const sock = net.connect(port, '127.0.0.1')
  sock.on('error', () => {})
  try {
    const demux = new RtspDemuxer()
    const reply = new Promise<RtspResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('DESCRIBE not answered within 8 s')), 8000)
      sock.on('data', d => {
        for (const u of demux.push(d)) if (u.kind === 'response') { clearTimeout(timer); resolve(u) }
      })
    })
    sock.write(`DESCRIBE rtsp://127.0.0.1:${port}${path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n`)
    return await reply
  } finally { sock.destroy() }
}

const audioFmtp = (sdp: string): string => /^a=fmtp:\d+ [^\r\n]*mode=AAC[^\r\n]*$/m.exec(sdp)?.[0] ?? ''
const configOf = (sdp: string): string | undefined => /config=([0-9a-fA-F]+)/.exec(audioFmtp(sdp))?.[1]

t.test('the origin itself and an HTTP tunnel viewer of the live path see the 5-byte AAC config', async tt => {
  const d0 = await plainDescribe(origin.port, '/live/demo')
  tt.equal(d0.status, 200)
  tt.equal(
    configOf(d0.body.toString('latin1')),
    '119056e500',
    'the origin announces the 5-byte config (FFmpeg-made AAC)'
  )
  const c = await TunnelClient.player(gw.port, '/live/demo')
  tt.teardown(() => c.close())
  const d = await c.request(
    'DESCRIBE',
    `rtsp://127.0.0.1:${gw.port}/live/demo`,
    { Accept: 'application/sdp' },
    { timeoutMs: 8000 }
  )
  tt.equal(d.status, 200)
  tt.match(d.body.toString('latin1'), /a=range:npt=now-/, 'live SDP')
  tt.equal(
    await metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }),
    1,
    'answered by the live fan-out (one live viewer)'
  )
  tt.equal(
    configOf(d.body.toString('latin1')),
    '119056e500',
    'an RTSP-over-HTTP viewer gets the config as the origin sent it'
  )
  c.close()
  await waitFor(() => metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }), n => n === 0, 8000)
})

t.test('a WebSocket viewer of a live: true path gets config=1190 and plays', async tt => {
  const url = `rtsp://127.0.0.1:${gw.port}/live/demo`
  const ws = await WsRtspClient.open(gw.port)
  tt.teardown(() => ws.ws.terminate())
  const d = await ws.setup(url)
  tt.equal(d.status, 200, 'DESCRIBE 200')
  const sdp = d.body.toString('latin1')
  tt.match(sdp, /a=range:npt=now-/, 'live SDP')
  tt.equal(
    await metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }),
    1,
    'served by src/live/ (tunnelgate_live_viewers 1)'
  )
  tt.equal(await metric(gw, 'tunnelgate_live_upstreams', { path: '/live/demo' }), 1, 'one upstream session')
  tt.match(
    audioFmtp(sdp),
    /^a=fmtp:\d+ streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190$/,
    'AAC config reduced to its 2-byte core, other parameters kept'
  )
  tt.equal(Number(d.header('Content-Length')), d.body.length, 'Content-Length = the reduced body')
  tt.equal(d.message.length, d.raw.length, 'the DESCRIBE reply is alone in its message')
  tt.equal((await ws.request('PLAY', url)).status, 200, 'PLAY 200')
  await waitFor(() => ws.frameCount(0) >= 25 && ws.frameCount(2) >= 10, ok => ok, 10_000)
  tt.ok(
    ws.frameCount(0) >= 25 && ws.frameCount(2) >= 10,
    `video ${ws.frameCount(0)} and audio ${ws.frameCount(2)} RTP packets through the live fan-out`
  )

  const ws2 = await WsRtspClient.open(gw.port)
  tt.teardown(() => ws2.ws.terminate())
  const d2 = await ws2.setup(url)
  tt.equal(
    configOf(d2.body.toString('latin1')),
    '1190',
    'a second WebSocket viewer joining the running path: config=1190 too'
  )
  tt.equal(await metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }), 2, 'two live viewers')
  tt.same(ws.badMessages, [], 'every message was one whole response or whole $ frames')
  tt.same(ws2.badMessages, [])
  ws.close()
  ws2.close()
  const gone = await waitFor(() => metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }), n => n === 0, 8000)
  tt.equal(gone, 0, 'both viewers detached')
})

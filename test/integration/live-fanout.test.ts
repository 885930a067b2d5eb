/**
 * Live fan-out (docs/live-fanout.md) with the embedded origin's /live/demo as the backend
 * and raw tunnel viewers (test/helpers/live-viewers.ts):
 *  - 200 viewers through one relay: the origin's own /metrics shows ONE session; every viewer
 *    gets the same video payloads in order over a common window; each starts at a keyframe;
 *    after they leave, the backend session closes after live.lingerMs;
 *  - start time: a new viewer of the playing path gets its first RTP packet sooner than a direct
 *    viewer of the origin (medians of 5 each, same run), and its first video packet is SPS/IDR;
 *  - PAUSE / resume PLAY / TEARDOWN / keepalives answered by the relay, one Session per viewer,
 *    bad requests get coded answers (461, 404, 454, 455, 405);
 *  - route live: auto detects /live/demo as live and /demo as VOD (proxied, own backend session).
 */
import t from 'tap'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { startTestGateway, metric, errorCount } from '../helpers/gateway-harness.js'
import { waitFor, waitFor as poll } from '../helpers/wait.js'
import { TunnelClient } from '../helpers/tunnel-client.js'
import { commonVideoWindow, h264Nal, LiveViewerClient, openLiveViewers } from '../helpers/live-viewers.js'
import { RawRtspClient } from '../helpers/peers.js'

const quietLog = { info () {}, warn () {}, error () {} }
const LINGER_MS = 1000

let origin: OriginHandle
let gw: Gateway

/** A gauge from the origin's own /metrics endpoint (over HTTP, as a scraper sees it). */
async function originScrape (name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${origin.metricsPort!}/metrics`)
  const text = await res.text()
  const line = text.split('\n').find(l => l.startsWith(`${name} `))
  if (line === undefined) throw new Error(`origin /metrics has no ${name}`)
  return Number(line.split(' ')[1])
}

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', metricsPort: 0, logger: quietLog })
  gw = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], {
    workers: 0,
    routes: [
      { path: '/', backends: [] },
      { path: '/live', backends: [], live: true },
      { path: '/auto', backends: [], backendPath: '/', live: 'auto' }
    ],
    live: { lingerMs: LINGER_MS }
  })
})
t.teardown(async () => { await origin.close() })

function firstIsKey (payload: Buffer | null): boolean {
  if (payload === null) return false
  const n = h264Nal(payload)
  return n.type === 7 || n.type === 8 || (n.type === 5 && n.fuStart !== false)
}

t.test('200 viewers of /live/demo through one relay share ONE backend session', async tt => {
  const viewers = await openLiveViewers(gw.port, '/live/demo', 200, { batch: 25, recordVideo: true })
  tt.teardown(() => { for (const v of viewers) v.close() })
  tt.equal(viewers.length, 200, '200 viewers playing')
  tt.equal(await originScrape('tunnelgate_origin_sessions'), 1, "the origin's own /metrics: one RTSP session")
  tt.equal(
    await metric(gw, 'tunnelgate_live_upstreams', { path: '/live/demo' }),
    1,
    'tunnelgate_live_upstreams{path="/live/demo"} 1'
  )
  tt.equal(
    await metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }),
    200,
    'tunnelgate_live_viewers{path="/live/demo"} 200'
  )
  tt.ok(await metric(gw, 'tunnelgate_live_gop_cache_bytes', { path: '/live/demo' }) > 0, 'GOP cache holds bytes')
  // Let every viewer receive a common stretch (~2 s) after the last one started.
  const marks = viewers.map(v => v.video.length)
  await waitFor(
    () => viewers.every((v, i) => v.video.length >= marks[i]! + 60),
    'every viewer got 60 more video packets',
    10000,
    50
  )
  const w = commonVideoWindow(viewers)
  tt.ok(w.length >= 60, `common window of ${w.length} video packets`)
  tt.ok(w.identical, 'every viewer received the same video payloads (md5) in the same order')
  tt.ok(w.contiguous, 'no viewer missed a packet in the window (sequence numbers contiguous)')
  tt.ok(viewers.every(v => firstIsKey(v.firstVideo)), 'every viewer\'s first video packet is SPS/PPS or an IDR')
  tt.ok(
    viewers.every(v => /seq=\d+;rtptime=\d+/.test(v.play?.header('rtp-info') ?? '')),
    'every PLAY reply has RTP-Info with seq and rtptime'
  )
  // RTP-Info names the viewer's first packet.
  const v0 = viewers[viewers.length - 1]!
  const seq0 = Number(/trackID=1;seq=(\d+)/.exec(v0.play!.header('rtp-info')!)![1])
  tt.equal(v0.video[0]!.seq, seq0, 'RTP-Info seq of the video track = the seq of the first video packet the viewer got')
  tt.equal(await errorCount(gw, 'TG_ERR_LIVE_VIEWER_SLOW'), 0, 'no viewer was slow')
  for (const v of viewers) v.close()
  const gone = await poll(() => metric(gw, 'tunnelgate_live_viewers', { path: '/live/demo' }), n => n === 0, 10000, 20)
  const left = performance.now()
  tt.equal(gone, 0, 'every viewer detached')
  tt.equal(await originScrape('tunnelgate_origin_sessions'), 1, 'backend session kept during the linger time')
  const sessions = await poll(() => originScrape('tunnelgate_origin_sessions'), n => n === 0, LINGER_MS + 5000, 50)
  tt.equal(sessions, 0, `backend session closed after live.lingerMs (${(performance.now() - left).toFixed(0)} ms)`)
  tt.equal(await metric(gw, 'tunnelgate_live_upstreams', { path: '/live/demo' }), 0, 'tunnelgate_live_upstreams 0')
})

t.test('start time: a viewer of a playing live path starts sooner than a direct viewer, at a keyframe', async tt => {
  const keeper = await LiveViewerClient.start(gw.port, '/live/demo')
  tt.teardown(() => keeper.close())
  const direct: number[] = []
  const relayed: number[] = []
  for (let i = 0; i < 5; i++) {
    // Direct: the origin holds PLAY until its next keyframe (up to one GOP, 1 s).
    const d = await RawRtspClient.connect(origin.port)
    let first = 0
    d.onFrame = ch => { if (first === 0 && ch === 0) first = performance.now() }
    const url = `rtsp://127.0.0.1:${origin.port}/live/demo`
    await d.request('DESCRIBE', url, { Accept: 'application/sdp' })
    await d.request('SETUP', `${url}/trackID=1`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' })
    await d.request('SETUP', `${url}/trackID=2`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=2-3' })
    const t0 = performance.now()
    await d.request('PLAY', `${url}/`, { Range: 'npt=0.000-' })
    await waitFor(() => first > 0, 'first direct packet', 5000, 2)
    direct.push(first - t0)
    d.close()
    // Through the tunnel, to the already playing path: the GOP cache.
    const v = await LiveViewerClient.start(gw.port, '/live/demo')
    await waitFor(() => v.firstVideo !== null, 'first relayed video packet', 5000, 2)
    relayed.push(v.startMs)
    tt.ok(
      firstIsKey(v.firstVideo),
      `relayed viewer ${i}: first video packet is SPS/PPS/IDR (NAL ${h264Nal(v.firstVideo!).type})`
    )
    v.close()
  }
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!
  tt.ok(
    median(relayed) < median(direct),
    `median time to first RTP: relayed ${median(relayed).toFixed(1)} ms < direct ${
      median(direct).toFixed(1)} ms (relayed ${relayed.map(x => x.toFixed(0)).join('/')}, direct ${
      direct.map(x => x.toFixed(0)).join('/')})`
  )
})

t.test('viewers starting together, on two channel layouts: each gets the GOP on its own channels only', async tt => {
  // Viewers whose PLAYs land in the same upstream batch start from one framed copy of the GOP per
  // channel layout (fanout.ts #tryStart): a copy must never reach a viewer of the other layout.
  const keeper = await LiveViewerClient.start(gw.port, '/live/demo')
  tt.teardown(() => keeper.close())
  await waitFor(() => keeper.firstVideo !== null, 'the path plays', 5000, 5)
  const viewers = await Promise.all(
    Array.from(
      { length: 12 },
      async (_, i) =>
        await LiveViewerClient.start(gw.port, '/live/demo', { recordVideo: true, channelBase: i % 2 === 0 ? 0 : 10 })
    )
  )
  tt.teardown(() => { for (const v of viewers) v.close() })
  await waitFor(() => viewers.every(v => v.video.length >= 60), 'every viewer got 60 video packets', 10000, 20)
  tt.same(
    [...new Set(viewers.map(v => v.channelOf.video))].sort((a, b) => a - b),
    [0, 10],
    'video on interleaved 0 for half of them, 10 for the others'
  )
  tt.ok(viewers.every(v => v.foreignFrames === 0), 'no frame on a channel a viewer did not set up')
  tt.ok(viewers.every(v => firstIsKey(v.firstVideo)), 'every viewer starts at SPS/PPS or an IDR')
  const w = commonVideoWindow(viewers)
  tt.ok(
    w.length >= 30 && w.identical && w.contiguous,
    `the same video payloads, contiguous, in a common window of ${w.length} packets`
  )
})

t.test('the relay answers a live viewer\'s RTSP itself: keepalive, PAUSE, resume, TEARDOWN, errors', async tt => {
  const c = await TunnelClient.player(gw.port, '/live/demo')
  tt.teardown(() => c.close())
  const url = `rtsp://127.0.0.1:${gw.port}/live/demo`
  const o = await c.request('OPTIONS', url)
  tt.match(o.header('public'), /GET_PARAMETER/, 'OPTIONS: Public lists GET_PARAMETER')
  const d = await c.request('DESCRIBE', url, { Accept: 'application/sdp' })
  tt.equal(d.status, 200)
  const sdp = d.body.toString()
  tt.match(sdp, /a=range:npt=now-/, 'SDP says live')
  tt.notMatch(sdp, new RegExp(`:${origin.port}`), 'no backend port in the SDP')
  tt.equal(d.header('content-base'), `${url}/`, 'Content-Base is the request URL + /')
  tt.equal(
    (await c.request('SETUP', `${url}/trackID=1`, { Transport: 'RTP/AVP;unicast;client_port=5000-5001' })).status,
    461,
    'UDP-only Transport: 461'
  )
  tt.equal(
    (await c.request('SETUP', `${url}/trackID=9`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' })).status,
    404,
    'unknown track: 404'
  )
  tt.equal((await c.request('PLAY', `${url}/`)).status, 455, 'PLAY before SETUP: 455')
  const s = await c.request('SETUP', `${url}/trackID=1`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=4-5' })
  tt.equal(s.status, 200)
  tt.match(s.header('transport'), /interleaved=4-5;ssrc=[0-9A-F]{8}/, "the viewer's own channels and the relay's SSRC")
  let frames = 0
  const channels = new Set<number>()
  c.onFrame = ch => { frames++; channels.add(ch) }
  const p = await c.request('PLAY', `${url}/`)
  tt.equal(p.status, 200)
  tt.match(
    p.header('rtp-info'),
    new RegExp(`^url=${url}/trackID=1;seq=\\d+;rtptime=\\d+$`),
    'RTP-Info for the one track set up, with its SETUP URL'
  )
  await waitFor(() => frames > 20, 'RTP after PLAY', 5000)
  tt.same(
    [...channels].filter(ch => ch % 2 === 0),
    [4],
    "video arrives on the viewer's channel 4 only (audio not set up)"
  )
  tt.equal((await c.request('GET_PARAMETER', `${url}/`)).status, 200, 'GET_PARAMETER keepalive: 200')
  tt.equal((await c.request('PLAY', `${url}/`)).status, 200, 'PLAY while playing (ping): 200')
  tt.equal((await c.request('RECORD', `${url}/`)).status, 405, 'RECORD: 405')
  const other = await TunnelClient.player(gw.port, '/live/demo')
  tt.teardown(() => other.close())
  tt.equal(
    (await other.request('GET_PARAMETER', url, { Session: c.session! })).status,
    454,
    "another viewer's Session: 454"
  )
  tt.equal((await c.request('PAUSE', `${url}/`)).status, 200, 'PAUSE: 200')
  await new Promise(resolve => setTimeout(resolve, 100))
  const atPause = frames
  await new Promise(resolve => setTimeout(resolve, 600))
  tt.equal(frames, atPause, 'no RTP while paused')
  const again = await c.request('PLAY', `${url}/`)
  tt.equal(again.status, 200, 'resume PLAY: 200')
  tt.match(again.header('rtp-info'), /seq=\d+/, 'resume PLAY has RTP-Info again')
  await waitFor(() => frames > atPause + 10, 'RTP after resume', 5000)
  const td = await c.request('TEARDOWN', `${url}/`)
  tt.equal(td.status, 200, 'TEARDOWN: 200')
  tt.equal(await originScrape('tunnelgate_origin_sessions'), 1, 'one backend session throughout')
  tt.ok(await errorCount(gw, 'TG_ERR_LIVE_METHOD') >= 1, 'TG_ERR_LIVE_METHOD counted')
  tt.ok(await errorCount(gw, 'TG_ERR_LIVE_TRACK') >= 1, 'TG_ERR_LIVE_TRACK counted')
})

t.test('route live: auto — /auto/live/demo is detected live (fan-out), /auto/demo is VOD (proxied)', async tt => {
  await poll(() => originScrape('tunnelgate_origin_sessions'), n => n === 0, LINGER_MS + 5000, 50)
  const a = await LiveViewerClient.start(gw.port, '/auto/live/demo')
  const b = await LiveViewerClient.start(gw.port, '/auto/live/demo')
  tt.teardown(() => { a.close(); b.close() })
  await waitFor(() => a.packets > 0 && b.packets > 0, 'both play', 5000)
  tt.equal(
    await originScrape('tunnelgate_origin_sessions'),
    1,
    'two viewers of the auto-detected live path: one backend session'
  )
  tt.equal(
    await metric(gw, 'tunnelgate_live_detections_total', { result: 'live' }),
    1,
    'detected live once (then remembered)'
  )
  const v1 = await LiveViewerClient.start(gw.port, '/auto/demo')
  const v2 = await LiveViewerClient.start(gw.port, '/auto/demo')
  tt.teardown(() => { v1.close(); v2.close() })
  await waitFor(() => v1.packets > 0 && v2.packets > 0, 'VOD viewers play', 5000)
  tt.equal(
    await originScrape('tunnelgate_origin_sessions'),
    3,
    'each VOD viewer has its own backend session (1 live + 2 VOD)'
  )
  tt.match(v1.play?.header('range') ?? '', /^npt=0/, 'the VOD PLAY reply comes from the backend (npt=0-…)')
  tt.equal(
    await metric(gw, 'tunnelgate_live_detections_total', { result: 'vod' }),
    1,
    'detected VOD once (then remembered)'
  )
})

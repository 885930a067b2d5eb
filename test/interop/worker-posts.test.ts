// POST legs with local relay workers stay in the portal process and their bytes are relayed to
// the worker as messages (src/route/relayed-post.ts); only the GET's socket is handed over. The
// tunnel behaviours that involve the POST, through a gateway with 2 workers in front of the
// embedded origin: re-POST after the first POST closed (QuickTime), POST before GET, the
// interim 100 Continue, the gateway closing the POST when the tunnel ends, and real clients
// (ffmpeg, ffprobe and GStreamer rtsph://) playing through it.
import t from 'tap'
import pino from 'pino'
import { buildConfig } from '../../src/config/config.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { GetLeg, PostLeg, TunnelClient, newCookie, rtspRequest } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'
import { gstSummary, runGst, runPeer } from '../helpers/peers.js'

const silent = pino({ level: 'silent' })
let gw: Gateway

t.before(async () => {
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
  t.teardown(() => origin.close())
  gw = await startGateway(buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 2,
    ops: { port: 0 },
    backends: [`rtsp://127.0.0.1:${origin.port}`],
    limits: { maxTunnelsPerIp: 0, maxUnpairedLegsPerIp: 0 }
  }]),
  { logger: silent })
  t.teardown(() => gw.close())
})

t.test('QuickTime style: the first POST closes after PLAY, media keeps coming, a new POST carries ' +
  'TEARDOWN', async t => {
  const c = await TunnelClient.open(gw.port, { path: '/demo', url: `rtsp://127.0.0.1:${gw.port}/demo` })
  t.teardown(() => c.close())
  const { session, play } = await c.play()
  t.equal(play.status, 200, 'PLAY answered')
  c.post.end()
  await c.post.waitClosed(5000, 'the first POST to close')
  const before = c.get.frames().length
  await waitFor(() => c.get.frames().length >= before + 20, 'RTP after the POST closed', 5000)
  t.pass('media flows with no POST open')
  const post = await c.openPost()
  const teardown = await c.request('TEARDOWN', c.url, [['Session', session]], { post })
  t.equal(teardown.status, 200, 'TEARDOWN on the new POST answered')
})

t.test('POST before GET: the request waits for its GET and is answered on it', async t => {
  const cookie = newCookie()
  const url = `rtsp://127.0.0.1:${gw.port}/demo`
  const post = await PostLeg.open(gw.port, { cookie, path: '/demo' })
  t.teardown(() => post.destroy())
  await post.send(rtspRequest('DESCRIBE', url, 1, [['Accept', 'application/sdp']]))
  await new Promise(resolve => setTimeout(resolve, 200))
  const get = await GetLeg.open(gw.port, { cookie, path: '/demo' })
  t.teardown(() => get.destroy())
  t.match((await get.readHead(5000)).statusLine, /^HTTP\/1\.[01] 200/, 'the GET opens')
  const res = await get.response(1, 5000)
  t.equal(res.status, 200, 'DESCRIBE answered')
  t.match(getHeader(res, 'Content-Type') ?? '', /application\/sdp/)
})

t.test('Expect: 100-continue gets its interim reply on the POST, written by the portal for the worker', async t => {
  const c = await TunnelClient.open(gw.port, {
    path: '/demo',
    url: `rtsp://127.0.0.1:${gw.port}/demo`,
    postHeaders: [['Expect', '100-continue']]
  })
  t.teardown(() => c.close())
  await waitFor(() => c.post.received.toString('latin1').includes('100 Continue'), '100 Continue on the POST', 5000)
  t.equal(c.post.received.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n', 'and nothing else')
  t.equal((await c.request('OPTIONS', c.url)).status, 200, 'the tunnel works')
})

t.test('the tunnel ending (client closed the GET) closes its POST at the gateway', async t => {
  const c = await TunnelClient.open(gw.port, { path: '/demo', url: `rtsp://127.0.0.1:${gw.port}/demo` })
  t.teardown(() => c.close())
  t.equal((await c.request('OPTIONS', c.url)).status, 200)
  c.get.destroy()
  await c.post.waitClosed(5000, 'the gateway to close the POST')
  t.pass('POST closed')
})

t.test('real clients through 2 workers: ffmpeg, ffprobe and GStreamer rtsph://', async t => {
  const url = `rtsp://127.0.0.1:${gw.port}/demo`
  const ff = await runPeer('ffmpeg',
    ['-v', 'error', '-rtsp_transport', 'http', '-i', url, '-t', '2', '-f', 'null', '-'], { timeoutMs: 30_000 })
  t.equal(ff.code, 0, `ffmpeg plays (stderr: ${ff.stderr.slice(0, 300)})`)
  t.equal(ff.stderr.trim(), '', 'ffmpeg -v error prints nothing')
  const probe = await runPeer('ffprobe',
    ['-v', 'error', '-rtsp_transport', 'http', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url],
    { timeoutMs: 30_000 })
  t.equal(probe.code, 0, `ffprobe (stderr: ${probe.stderr.slice(0, 300)})`)
  t.match(probe.stdout, /h264/, 'ffprobe lists the video stream')
  // runGst: sync=true, and GStreamer's own stop-time race told apart from a failure (test/helpers/peers.ts).
  const gst = await runGst(['rtspsrc', `location=rtsph://127.0.0.1:${gw.port}/demo`, '!', 'decodebin'], 50, {
    timeoutMs: 30_000
  })
  t.ok(gst.played, `GStreamer rtsph:// plays (${gstSummary(gst, 3000)})`)
})

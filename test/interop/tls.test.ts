/**
 * TLS on the front door (tls.cert / tls.key / tls.port) with a certificate made here by openssl:
 *  - ffmpeg -rtsp_transport https (the QuickTime tunnel over TLS) decodes /demo through the gateway;
 *  - a wss:// client (ws) plays /live/demo; Chromium plays https://…/watch/demo (currentTime +5 s,
 *    no error, pixels not black);
 *  - with a local worker the TLS legs stay in the portal's own relay and still play;
 *  - an unreadable certificate stops the start with TG_ERR_TLS_CONFIG; a plain-text client on the
 *    TLS port is counted as TG_ERR_TLS_HANDSHAKE; everything back to zero.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Gateway } from '../../src/gateway.js'
import { startGateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { startTestGateway, metric, errorCount } from '../helpers/gateway-harness.js'
import { establishedTo, parseFramecrc } from '../helpers/interop.js'
import { waitFor } from '../helpers/wait.js'
import { runPeer } from '../helpers/peers.js'
import { WsRtspClient } from '../helpers/ws-rtsp-client.js'
import { checkPlays, installErrorProbe, launchChromium, videoErrors, watchPage } from '../helpers/browser.js'

const quietLog = { info () {}, warn () {}, error () {} }
const dir = mkdtempSync(join(tmpdir(), 'tg-tls-'))
const cert = join(dir, 'cert.pem')
const key = join(dir, 'key.pem')
let origin: OriginHandle
let gw: Gateway

t.before(async () => {
  const r = await runPeer('openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { timeoutMs: 30000 })
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`)
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  gw = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], { workers: 0, tls: { cert, key, port: 0 } })
})
t.teardown(async () => { await origin?.close() })

async function backToZero (tt: Test, g: Gateway): Promise<void> {
  const s = await waitFor(async () =>
    ({
      active: await metric(g, 'tunnelgate_tunnels_active'),
      sessions: g.relay.activeSessions,
      backend: establishedTo(origin.port)
    }),
  v => v.active === 0 && v.sessions === 0 && v.backend === 0, 8000)
  tt.same(s, { active: 0, sessions: 0, backend: 0 }, 'no session or backend connection left')
}

t.test('ffmpeg -rtsp_transport https decodes /demo through the TLS port', async tt => {
  tt.ok(gw.tlsPort !== null && gw.tlsPort !== gw.port, `TLS on its own port ${gw.tlsPort ?? ''}`)
  const r = await runPeer('ffmpeg',
    ['-nostdin', '-v', 'error', '-rtsp_transport', 'https', '-i', `rtsp://127.0.0.1:${gw.tlsPort!}/demo`,
      '-t', '4', '-fps_mode', 'passthrough', '-f', 'framecrc', '-'], { timeoutMs: 40000 })
  tt.equal(r.code, 0, 'ffmpeg exit 0')
  tt.equal(r.stderr, '', 'ffmpeg printed no error')
  const f = parseFramecrc(r.stdout)
  tt.ok((f.frames.get(0) ?? 0) >= 90, `${f.frames.get(0) ?? 0} video frames decoded`)
  tt.ok((f.frames.get(1) ?? 0) >= 150, `${f.frames.get(1) ?? 0} audio frames decoded`)
  tt.ok(await metric(gw, 'tunnelgate_tunnels_total', { transport: 'http-tunnel' }) >= 1, 'an http-tunnel session')
  await backToZero(tt, gw)
})

t.test('wss:// RTSP over WebSocket plays /live/demo', async tt => {
  const c = await WsRtspClient.open(gw.tlsPort!, { scheme: 'wss', wsOptions: { rejectUnauthorized: false } })
  const url = `rtsp://127.0.0.1:${gw.tlsPort!}/live/demo`
  tt.equal((await c.setup(url)).status, 200, 'DESCRIBE over wss')
  tt.equal((await c.request('PLAY', url)).status, 200)
  await waitFor(() => c.frameCount(0), n => n >= 40, 8000)
  tt.ok(c.frameCount(0) >= 40, `${c.frameCount(0)} video packets`)
  tt.same(c.badMessages, [])
  c.close()
  await c.closed
  await backToZero(tt, gw)
})

t.test('Chromium plays https://…/watch/demo', async tt => {
  const browser = await launchChromium()
  tt.teardown(async () => { await browser.close() })
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await ctx.newPage()
  await installErrorProbe(page)
  const log = watchPage(page)
  const r = await checkPlays(page, `https://127.0.0.1:${gw.tlsPort!}/watch/demo`, 5)
  tt.ok(r.t1 - r.t0 >= 5, `currentTime advanced ${(r.t1 - r.t0).toFixed(2)} s over https + wss`)
  tt.ok(r.share > 0.5, 'pixels not black')
  tt.same(await videoErrors(page), [])
  tt.same(log.errors, [])
  await ctx.close()
  await backToZero(tt, gw)
})

t.test('TLS with a local worker; bad certificate; plain text on the TLS port', async tt => {
  const w = await startTestGateway(tt, [`rtsp://127.0.0.1:${origin.port}`], { workers: 1, tls: { cert, key, port: 0 } })
  const r = await runPeer('ffmpeg',
    ['-nostdin', '-v', 'error', '-rtsp_transport', 'https', '-i', `rtsp://127.0.0.1:${w.tlsPort!}/demo`,
      '-t', '2', '-f', 'framecrc', '-'], { timeoutMs: 30000 })
  tt.equal(r.code, 0, 'worker mode: ffmpeg over TLS exit 0')
  tt.ok((parseFramecrc(r.stdout).frames.get(0) ?? 0) >= 40,
    'worker mode: frames decoded (legs served in the portal process)')
  await backToZero(tt, w)

  const before = await errorCount(gw, 'TG_ERR_TLS_HANDSHAKE')
  const s = net.connect(gw.tlsPort!, '127.0.0.1')
  s.on('error', () => {})
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise(resolve => s.once('close', resolve))
  tt.equal(await errorCount(gw, 'TG_ERR_TLS_HANDSHAKE'), before + 1, 'plain HTTP on the TLS port: TG_ERR_TLS_HANDSHAKE')

  const bad = buildConfig([{
    port: 0,
    host: '127.0.0.1',
    workers: 0,
    logLevel: 'silent',
    ops: { port: 0 },
    backends: [`rtsp://127.0.0.1:${origin.port}`],
    tls: { cert: join(dir, 'missing.pem'), key, port: 0 }
  }])
  await tt.rejects(startGateway(bad), { code: 'TG_ERR_TLS_CONFIG', message: /missing\.pem/ },
    'unreadable certificate: TG_ERR_TLS_CONFIG naming the file')
  tt.throws(() => buildConfig([{ tls: { cert } }]), { code: 'TG_ERR_CFG_INVALID', message: /tls\.key/ },
    'cert without key: config error')
})

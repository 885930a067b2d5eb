/**
 * The player page in a real browser: Debian's Chromium (playwright-core, no browser download)
 * opens /watch/<path> on the gateway, which serves media-stream-library's bundle and relays RTSP
 * over WebSocket to the embedded origin:
 *  - /watch/demo (VOD) and /watch/live/demo: video currentTime advances by ≥ 5 s, no error event,
 *    no page error, a frame read through a canvas is not black;
 *  - VOD pause (position frozen, RTSP PAUSE), resume, seek with the seek bar (PLAY Range), and the
 *    "stream ended" message at the end of the file; live pause ends the session, play restarts it;
 *  - /watch/nope says the stream is unknown; /watch lists the streams;
 *  - tokens: the page refuses a missing/expired token with a clear message, and plays with a valid
 *    one (the token rides on the WebSocket URL);
 *  - /watch/live/demo on a live fan-out route (`routes[].live: true`, answered by src/live/):
 *    plays the same way, with the 2-byte AAC config in the SDP the page received;
 *  - sessions, gauges and backend connections return to zero when the page goes.
 * TUNNELGATE_UPDATE_SCREENSHOTS=1 also writes docs/watch-demo.png.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { mkdtempSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'
import { startTestGateway, metric } from '../helpers/gateway-harness.js'
import { establishedTo } from '../helpers/interop.js'
import { waitFor } from '../helpers/wait.js'
import {
  checkPlays, installErrorProbe, launchChromium, playerState, until, videoErrors, videoTime, watchPage, type PageLog
} from '../helpers/browser.js'

const quietLog = { info () {}, warn () {}, error () {} }
let origin: OriginHandle
let gw: Gateway
let browser: Browser
const shots = mkdtempSync(join(tmpdir(), 'tg-watch-'))

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  gw = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`], {
    workers: 0,
    watch: { streams: ['/demo', '/live/demo'] }
  })
  browser = await launchChromium()
})
t.teardown(async () => {
  await browser?.close()
  await origin?.close()
})

async function newPage (): Promise<{ page: Page, log: PageLog }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
  await installErrorProbe(page)
  return { page, log: watchPage(page) }
}

async function backToZero (tt: Test, g: Gateway): Promise<void> {
  const s = await waitFor(async () =>
    ({
      sessions: g.relay.activeSessions,
      active: await metric(g, 'tunnelgate_tunnels_active'),
      backend: establishedTo(origin.port)
    }),
  v => v.sessions === 0 && v.active === 0 && v.backend === 0, 8000)
  tt.same(s, { sessions: 0, active: 0, backend: 0 }, 'no relay session, no tunnels_active, no backend connection left')
}

for (const path of ['/demo', '/live/demo']) {
  t.test(`Chromium plays /watch${path} through the gateway`, async tt => {
    const { page, log } = await newPage()
    const r = await checkPlays(page, `http://127.0.0.1:${gw.port}/watch${path}`, 5)
    tt.ok(r.t1 - r.t0 >= 5, `currentTime advanced ${(r.t1 - r.t0).toFixed(2)} s`)
    tt.ok(r.share > 0.5, `${Math.round(r.share * 100)}% of the ${r.width}x${r.height} frame is not black`)
    tt.same(await videoErrors(page), [], 'no error event on the video element')
    tt.same(log.errors, [], 'no page or console error')
    tt.same(r.state.errors, [], 'the player saw no RTSP error')
    tt.equal(r.state.duration, path === '/demo' ? 12 : null,
      path === '/demo' ? 'VOD: duration from the PLAY Range' : 'live: no duration')
    tt.equal(await page.locator('#seek').isVisible(), path === '/demo',
      path === '/demo' ? 'seek bar shown for VOD' : 'no seek bar for live')
    tt.equal(gw.relay.activeSessions, 1, 'one relay session while playing')
    tt.ok(await metric(gw, 'tunnelgate_legs_total', { transport: 'websocket' }) >= 1, 'counted as a websocket leg')
    const shot = join(shots, `watch${path.replace(/\//g, '-')}.png`)
    await page.screenshot({ path: shot })
    if (path === '/demo' && process.env.TUNNELGATE_UPDATE_SCREENSHOTS === '1') {
      copyFileSync(shot, new URL('../../docs/watch-demo.png', import.meta.url).pathname)
    }
    await page.close()
    await backToZero(tt, gw)
  })
}

t.test('Chromium plays /watch/live/demo served by the live fan-out (routes[].live: true)', async tt => {
  const g = await startTestGateway(tt, [`rtsp://127.0.0.1:${origin.port}`], {
    workers: 0,
    routes: [{ path: '/', backends: [] }, { path: '/live', backends: [], live: true }],
    live: { lingerMs: 200 },
    watch: { streams: ['/live/demo'] }
  })
  const { page, log } = await newPage()
  // The SDP the page's WebSocket received (media-stream-library needs config= in 16 bits).
  const sdps: string[] = []
  page.on('websocket', ws => ws.on('framereceived', f => {
    const text = typeof f.payload === 'string' ? f.payload : f.payload.toString('latin1')
    if (text.startsWith('RTSP/1.0 200') && /\r\nContent-Type: application\/sdp/i.test(text)) sdps.push(text)
  }))
  const r = await checkPlays(page, `http://127.0.0.1:${g.port}/watch/live/demo`, 5)
  tt.ok(r.t1 - r.t0 >= 5, `currentTime advanced ${(r.t1 - r.t0).toFixed(2)} s`)
  tt.ok(r.share > 0.5, `${Math.round(r.share * 100)}% of the ${r.width}x${r.height} frame is not black`)
  tt.same(await videoErrors(page), [], 'no error event on the video element')
  tt.same(log.errors, [], 'no page or console error')
  tt.same(r.state.errors, [], 'the player saw no RTSP error')
  tt.equal(await metric(g, 'tunnelgate_live_viewers', { path: '/live/demo' }), 1,
    'answered by the live fan-out: tunnelgate_live_viewers{path="/live/demo"} 1')
  tt.equal(await metric(g, 'tunnelgate_live_upstreams', { path: '/live/demo' }), 1, 'one upstream session')
  tt.equal(sdps.length, 1, 'one SDP received by the page')
  tt.match(sdps[0] ?? '', /a=range:npt=now-/, 'the live SDP')
  tt.match(sdps[0] ?? '', /mode=AAC-hbr;[^\r\n]*config=1190\r\n/, 'AAC config reduced to 1190 on the live fan-out path')
  await page.close()
  await backToZero(tt, g)
  tt.equal(await waitFor(() => metric(g, 'tunnelgate_live_viewers', { path: '/live/demo' }), n => n === 0, 8000), 0,
    'the live viewer detached')
})

t.test('VOD controls: pause, resume, seek bar, end of stream', async tt => {
  const { page, log } = await newPage()
  await checkPlays(page, `http://127.0.0.1:${gw.port}/watch/demo`, 1)
  await page.click('#play')
  const paused = await until(() => playerState(page), s => s.state === 'paused', 5000, 'paused')
  tt.equal(paused.message, 'Paused')
  await new Promise(resolve => setTimeout(resolve, 500))
  const p0 = await videoTime(page)
  await new Promise(resolve => setTimeout(resolve, 1200))
  tt.ok(Math.abs(await videoTime(page) - p0) < 0.05, 'position frozen while paused')
  tt.equal(gw.relay.activeSessions, 1, 'the session stays open (RTSP PAUSE)')
  await page.click('#play')
  const resumed = await until(() => videoTime(page), t => t > p0 + 1, 10_000, 'playback to resume')
  tt.ok(resumed > p0 + 1, 'playing again after resume')
  // Seek with the bar: PLAY Range npt=6- on a new session.
  await page.locator('#seek').fill('6')
  const s = await until(() => playerState(page), st => st.state === 'playing' && st.offset >= 5 && st.position >= 6.5,
    15_000, 'playback from 6 s')
  tt.ok(s.offset >= 5 && s.offset <= 6.5, `restarted at npt ${s.offset} (the key frame at or before 6 s)`)
  const ended = await until(() => playerState(page), st => st.kind === 'ended', 20_000, 'the end of the 12 s file')
  tt.equal(ended.message, 'The stream ended.', 'the end is announced')
  tt.ok(ended.position >= 11, `ended at ${ended.position.toFixed(1)} s`)
  tt.same(await videoErrors(page), [])
  tt.same(log.errors, [])
  await page.close()
  await backToZero(tt, gw)
})

t.test('live controls: pause ends the session, play starts a new one', async tt => {
  const { page, log } = await newPage()
  await checkPlays(page, `http://127.0.0.1:${gw.port}/watch/live/demo`, 1)
  await page.click('#play')
  await until(() => playerState(page), s => s.state === 'paused', 5000, 'paused')
  await backToZero(tt, gw)
  await page.click('#play')
  const t0 = await until(() => playerState(page), s => s.state === 'playing', 10_000, 'live again')
  tt.equal(t0.message, 'Live')
  await until(() => videoTime(page), t => t > 1, 10_000, 'frames after restart')
  tt.equal(gw.relay.activeSessions, 1, 'a new session')
  tt.same(log.errors, [])
  await page.close()
  await backToZero(tt, gw)
})

t.test('unknown stream, index page', async tt => {
  const { page } = await newPage()
  await page.goto(`http://127.0.0.1:${gw.port}/watch/nope`)
  const s = await until(() => playerState(page), st => st.kind === 'unknown', 10_000, 'the unknown-stream message')
  tt.equal(s.message, 'There is no stream at /nope.')
  tt.same(s.errors, [404])
  await page.goto(`http://127.0.0.1:${gw.port}/watch`)
  tt.same(await page.locator('a[href^="/watch/"]').evaluateAll(as => as.map(a => a.getAttribute('href'))),
    ['/watch/demo', '/watch/live/demo'], '/watch links every listed stream')
  // (a browser would normalise the dot-segment away; Node's http client sends it as is)
  const bad = await new Promise<number>((resolve, reject) =>
    http.get({ host: '127.0.0.1', port: gw.port, path: '/watch/a/../b' },
      res => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject))
  tt.equal(bad, 400, 'a dot-segment path is not a stream: 400')
  await page.close()
  await backToZero(tt, gw)
})

t.test('tokens: refused without one or with an expired one, plays with a valid one', async tt => {
  const secret = 'browser-secret-0123456789'
  const g = await startTestGateway(tt, [`rtsp://127.0.0.1:${origin.port}`], {
    workers: 0,
    auth: { tokenSecrets: [secret] }
  })
  const { page, log } = await newPage()
  const none = await page.goto(`http://127.0.0.1:${g.port}/watch/demo`)
  tt.equal(none?.status(), 401, 'no token: 401')
  tt.match(await page.locator('#status').textContent() ?? '', /needs a link with a valid token/)
  const expired = signHmacToken(secret, '/demo', Math.floor(Date.now() / 1000) - 5)
  const exp = await page.goto(`http://127.0.0.1:${g.port}/watch/demo?token=${encodeURIComponent(expired)}`)
  tt.equal(exp?.status(), 401, 'expired token: 401')
  tt.match(await page.locator('#status').textContent() ?? '', /expired/)
  const other = signHmacToken(secret, '/live/demo', Math.floor(Date.now() / 1000) + 600)
  const wrong = await page.goto(`http://127.0.0.1:${g.port}/watch/demo?token=${encodeURIComponent(other)}`)
  tt.equal(wrong?.status(), 403, 'token for another stream: 403')
  const token = signHmacToken(secret, '/demo', Math.floor(Date.now() / 1000) + 600)
  const r = await checkPlays(page, `http://127.0.0.1:${g.port}/watch/demo?token=${encodeURIComponent(token)}`, 2)
  tt.ok(r.t1 - r.t0 >= 2 && r.share > 0.5, 'plays with a valid token (passed on to the WebSocket)')
  tt.same(log.errors.filter(e => !/status of 40[13]/.test(e)), [], 'no page error besides the refused loads')
  await page.close()
  await backToZero(tt, g)
})

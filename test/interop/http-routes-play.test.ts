/**
 * HTTP routes, playing for real: one nginx is killed while ffmpeg plays HLS in real
 * time through the portal (the player continues after at most one failed segment request), and
 * headless Chromium plays the stream with hls.js bundled and served by the portal.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { haveNginx, makeMedia, startNginx } from '../helpers/nginx.js'
import { metric } from '../helpers/gateway-harness.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'

if (!haveNginx) throw new Error('nginx is not installed (apt-get install nginx; .ci/run installs it)')

async function gateway (t: Test, layer: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway(buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    ops: { port: 0 },
    ...layer
  }]))
  t.teardown(async () => { await gw.close() })
  return gw
}

async function until (what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const segs = (log: Array<Record<string, string>>): number => log.filter(l => /seg\d+\.ts/.test(l.request ?? '')).length

t.test('kill one nginx mid-play: ffmpeg continues on the other backend', async t => {
  const media = makeMedia(t, 30)
  const a = await startNginx(t, media.root, 'a')
  const b = await startNginx(t, media.root, 'b')
  const gw = await gateway(t, { httpRoutes: [{ path: '/hls', backends: [`${a.url}/hls`, `${b.url}/hls`] }] })
  const ff = spawn('ffmpeg',
    ['-hide_banner', '-v', 'warning', '-nostats', '-re', '-i', `http://127.0.0.1:${gw.port}/hls/stream.m3u8`, '-t',
      '12', '-f', 'null', '-', '-progress', 'pipe:1'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''; let err = ''
  ff.stdout.on('data', (d: Buffer) => { out += d.toString() })
  ff.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>(resolve => ff.on('close', code => resolve(code)))
  t.teardown(() => { ff.kill('SIGKILL') })
  await until('3 segments fetched', () => segs(a.accessLog()) + segs(b.accessLog()) >= 3, 20_000)
  const [victim, survivor] = segs(a.accessLog()) >= segs(b.accessLog()) ? [a, b] : [b, a]
  t.equal(segs(survivor.accessLog()), 0, `the viewer stayed on one backend (${victim.name}) while it was healthy`)
  await victim.kill()
  const killedAt = segs(victim.accessLog())
  const code = await Promise.race([exited, new Promise<null>(resolve => setTimeout(() => resolve(null), 40_000))])
  t.equal(code, 0, `ffmpeg exit 0 (${err.slice(0, 400)})`)
  const outUs = Math.max(...[...out.matchAll(/out_time_us=(\d+)/g)].map(m => Number(m[1])))
  t.ok(outUs >= 11_900_000, `ffmpeg played ${outUs / 1e6} s`)
  t.ok(segs(survivor.accessLog()) >= 12 - killedAt - 1,
    `the survivor ${survivor.name} served ${segs(survivor.accessLog())} segments after the kill`)
  const statuses = (await fetch(`http://127.0.0.1:${gw.opsPort}/status`).then(async r =>
    await r.json()) as { httpRoutes: Array<{ statuses: Record<string, number> }> }).httpRoutes[0]!.statuses
  const failed = Object.entries(statuses).filter(([k]) => !/^2\d\d$/.test(k)).reduce((n, [, v]) => n + v, 0)
  t.ok(await metric(gw, 'tunnelgate_http_requests_total', { route: '/hls' }) >= 12, 'the requests were counted')
  t.ok(failed <= 1, `${failed} failed request(s) through the portal (at most one): ${JSON.stringify(statuses)}`)
  const segmentErrors = err.split('\n').filter(l => /fail|error|refused|5\d\d/i.test(l))
  t.ok(segmentErrors.length <= 1, `at most one failed segment in ffmpeg's log: ${JSON.stringify(segmentErrors)}`)
  const status = await (await fetch(`http://127.0.0.1:${gw.opsPort}/status`)).json() as {
    httpRoutes: Array<{ backends: Array<{ name: string, healthy: boolean, up: boolean, failures: number }> }>
  }
  const v = status.httpRoutes[0]!.backends.find(x => x.name === `127.0.0.1:${victim.port}`)!
  // Out of the choice: by its health probes (often before ffmpeg's next request), or by a failed request.
  t.ok(!v.healthy && (!v.up || v.failures >= 1),
    `the killed backend was marked failed (probes ${v.up ? 'up' : 'down'}, ${v.failures} failed requests)`)
})

/** hls.js in headless Chromium plays /hls/stream.m3u8; with a secret, only the playlist URL carries a token. */
async function playInChromium (t: Test, secret: string | null): Promise<void> {
  const { chromium } = await import('playwright-core')
  const media = makeMedia(t, 20)
  const a = await startNginx(t, media.root, 'a')
  const gw = await gateway(t, {
    httpRoutes: [{ path: '/hls', backends: [`${a.url}/hls`] }],
    ...(secret === null ? {} : { auth: { tokenSecrets: [secret] } })
  })
  const src = secret === null
    ? '/hls/stream.m3u8'
    : `/hls/stream.m3u8?token=${signHmacToken(secret, '/hls', Math.floor(Date.now() / 1000) + 600)}`
  const browser = await chromium.launch({
    executablePath: '/usr/lib/chromium/chromium',
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage()
  const consoleErrors: string[] = []
  // "Failed to load resource" console lines are checked as responses below (the page has no favicon).
  page.on('console',
    m => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text()) })
  const badResponses: string[] = []
  page.on('response',
    r => { if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) badResponses.push(`${r.status()} ${r.url()}`) })
  const scripts: Array<{ url: string, status: number }> = []
  page.on('response', r => { if (r.url().endsWith('.js')) scripts.push({ url: r.url(), status: r.status() }) })
  await page.goto(`http://127.0.0.1:${gw.port}/hls-player.html?src=${encodeURIComponent(src)}`)
  t.same(scripts, [{ url: `http://127.0.0.1:${gw.port}/hls.js/hls.min.js`, status: 200 }],
    'hls.js came from the portal (no CDN)')
  // Page-side code as strings: the test's tsconfig has no DOM types.
  await page.waitForFunction('document.querySelector("video").currentTime >= 5 || window.hlsState.fatal !== null',
    undefined, { timeout: 40_000 })
  const state = await page.evaluate('({ t: document.querySelector("video").currentTime, ' +
    'error: document.querySelector("video").error && document.querySelector("video").error.code, ' +
    '...window.hlsState })') as {
    t: number,
    error: number | null,
    fatal: string | null,
    errors: string[],
    engine: string
  }
  t.ok(state.t >= 5, `currentTime ${state.t} s`)
  t.equal(state.fatal, null, 'no fatal hls.js error')
  t.equal(state.error, null, 'no media element error')
  t.match(state.engine, /^hls\.js /)
  t.same(consoleErrors, [], 'no console errors')
  t.same(badResponses, [], 'no failed request besides /favicon.ico')
  t.comment(`non-fatal hls.js events: ${JSON.stringify(state.errors)}`)
  t.ok(segs(a.accessLog()) >= 5, `${segs(a.accessLog())} segments fetched through the portal`)
  t.ok(await metric(gw, 'tunnelgate_http_requests_total', { route: '/hls', status: '200' }) >= 6)
  if (secret !== null) {
    t.ok(a.accessLog().filter(l => /seg\d+\.ts/.test(l.request ?? '')).every(l => !/token=/.test(l.request ?? '')),
      'the segments carried no token: the grant cookie let them through')
  }
}

t.test('headless Chromium plays the HLS stream with hls.js served by the portal',
  async t => { await playInChromium(t, null) })
t.test('headless Chromium plays a token-protected HLS stream: hls.js sends the grant cookie with the segments',
  async t => { await playInChromium(t, 'chromium-hls-secret-0123') })

/**
 * The status page in Debian's Chromium (driven by playwright-core) while real tunnels play
 * (ffmpeg -rtsp_transport http through the gateway to two embedded origins, two relay workers):
 * the page loads with no request leaving the portal, goes live over SSE, shows the tunnel
 * counts changing, the busiest stream, per-backend sessions and sparklines; a backend drained
 * with the page's own button (the admin API on the same ops listener, behind its token) is shown draining and new
 * sessions avoid it; a phone-sized viewport has no horizontal page scroll. Saves a screenshot
 * in the OS temp dir; TUNNELGATE_UPDATE_SCREENSHOTS=1 writes it to docs/status-page.png instead.
 */
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import pino from 'pino'
import { chromium, type Browser } from 'playwright-core'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { buildConfig } from '../../src/config/config.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { adminClient, play, stopAllPlayers, until } from '../helpers/ops.js'

const CHROMIUM = existsSync('/usr/lib/chromium/chromium') ? '/usr/lib/chromium/chromium' : '/usr/bin/chromium'
const SCREENSHOT = process.env.TUNNELGATE_UPDATE_SCREENSHOTS === '1'
  ? fileURLToPath(new URL('../../docs/status-page.png', import.meta.url))
  : join(mkdtempSync(join(tmpdir(), 'tg-status-')), 'status-page.png')
const TOKEN = 'browser-test-token-0123456789'
const quiet = { info () {}, warn () {}, error () {} }

let o1: OriginHandle
let o2: OriginHandle
let gw: Gateway
let browser: Browser

t.before(async () => {
  o1 = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
  o2 = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
  gw = await startGateway(
    buildConfig([
      {
        port: 0,
        host: '127.0.0.1',
        logLevel: 'silent',
        workers: 2,
        backends: [
          { name: 'origin-a', url: `rtsp://127.0.0.1:${o1.port}`, maxSessions: 8 },
          { name: 'origin-b', url: `rtsp://127.0.0.1:${o2.port}`, maxSessions: 8 }
        ],
        ops: { port: 0, token: TOKEN },
        admin: { enabled: true },
        status: { sampleIntervalMs: 500 }
      }
    ]),
    { logger: pino({ level: 'silent' }) }
  )
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  })
})
t.teardown(async () => {
  await browser?.close()
  await stopAllPlayers()
  await gw?.close()
  await o1?.close()
  await o2?.close()
})

t.test('live status page while tunnels play; drain a backend from the page', async t => {
  // The page is on the ops listener, not the tunnel port; with ops.token the browser answers the
  // Basic challenge with the token as password (and sends it for the page's own requests).
  t.equal((await fetch(`http://127.0.0.1:${gw.port}/`)).status, 404, 'no status page on the tunnel port')
  t.equal((await fetch(`http://127.0.0.1:${gw.opsPort}/`)).status, 401, 'the ops listener wants the token')
  const page = await browser.newPage({
    viewport: { width: 1100, height: 1250 },
    httpCredentials: { username: 'ops', password: TOKEN }
  })
  const foreign: string[] = []
  const consoleErrors: string[] = []
  page.on('request', r => { const u = new URL(r.url()); if (u.hostname !== '127.0.0.1') foreign.push(r.url()) })
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()) })
  const base = `http://127.0.0.1:${gw.opsPort}`
  await page.goto(base + '/')
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 15_000 })
  t.pass('live updates over server-sent events')
  await page.waitForFunction("document.querySelector('#tunnels')?.textContent === '0'")
  t.equal(await page.locator('#relays tbody tr').count(), 2, 'two worker relays listed')
  t.equal(await page.locator('#backends tbody tr').count(), 2, 'two backends listed')

  const url = `rtsp://127.0.0.1:${gw.port}/live/demo`
  const players = [play(url), play(url)]
  await page.waitForFunction("document.querySelector('#tunnels')?.textContent === '2'", undefined, { timeout: 20_000 })
  t.pass('the page shows 2 tunnels')
  await page.waitForFunction("Number(document.querySelector('#mbps')?.textContent) > 0", undefined, { timeout: 15_000 })
  t.pass('and a non-zero bit rate')
  const stream = page.locator('#streams tr[data-stream="/live/demo"] td.n').first()
  await t.resolves(stream.waitFor({ timeout: 10_000 }), 'busiest streams lists /live/demo')
  t.equal(await stream.textContent(), '2', '/live/demo has 2 tunnels')
  const sessions = async (name: string): Promise<number> =>
    Number(await page.locator(`#backends tr[data-backend="${name}"] td[data-testid="sessions"]`).textContent())
  await until(
    async () => await sessions('origin-a') + await sessions('origin-b'),
    n => n === 2,
    'backend sessions sum to 2'
  )
  t.ok(await page.locator('#spark-tunnels polyline').count() === 1, 'tunnels sparkline drawn')

  // Drain origin-a with the page's button (the admin API on the same listener).
  const drainButton = page.locator('#backends tr[data-backend="origin-a"] button')
  await drainButton.waitFor({ timeout: 5000 })
  t.equal(await drainButton.textContent(), 'drain')
  await drainButton.click()
  await page.waitForFunction(
    "/draining/.test(document.querySelector('#backends tr[data-backend=\"origin-a\"]')?.textContent ?? '')",
    undefined,
    { timeout: 10_000 }
  )
  t.pass('origin-a shown draining')
  t.match(await page.locator('#admin-msg').textContent(), /origin-a draining/, 'the page reports the API answer')
  const aBefore = await sessions('origin-a')
  const bBefore = await sessions('origin-b')
  players.push(play(url), play(url))
  await page.waitForFunction("document.querySelector('#tunnels')?.textContent === '4'", undefined, { timeout: 20_000 })
  await until(async () => await sessions('origin-b'), n => n === bBefore + 2, 'origin-b got both new sessions')
  t.equal(await sessions('origin-a'), aBefore, 'the drained backend got no new session')
  const api = adminClient(gw.opsPort, TOKEN)
  const tunnels = (await api('GET', '/admin/tunnels')).body.tunnels as Array<{ backend: string, startedAt: number }>
  t.same(
    tunnels
      .sort((x, y) => y.startedAt - x.startedAt)
      .slice(0, 2)
      .map(x => x.backend),
    ['origin-b', 'origin-b'],
    'the API agrees: new sessions on origin-b'
  )

  await page.waitForTimeout(1500) // a few more samples for the sparklines in the screenshot
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.ok(existsSync(SCREENSHOT), `screenshot saved to ${SCREENSHOT}`)

  // Stop two players: the count goes down.
  await players[0]!.stop()
  await players[1]!.stop()
  await page.waitForFunction("document.querySelector('#tunnels')?.textContent === '2'", undefined, { timeout: 20_000 })
  t.pass('the page shows the count going down')

  // Phone viewport: the page itself does not scroll sideways (tables scroll in their boxes).
  await page.setViewportSize({ width: 375, height: 800 })
  const overflow = await page.evaluate(
    'document.documentElement.scrollWidth - document.documentElement.clientWidth'
  ) as number
  t.ok(overflow <= 1, `no horizontal page scroll on a phone (overflow ${overflow}px)`)
  t.same(foreign, [], 'no request leaves the portal (no CDN)')
  t.same(consoleErrors, [], 'no console errors')
  await page.close()
})

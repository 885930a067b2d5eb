/**
 * The status page's HTTP routes section in Debian's Chromium (playwright-core): a gateway with one
 * HTTP route over two real nginx backends. The section lists the route and both backends, its
 * request/byte/viewer figures follow requests made through the portal (and req/s shows the burst),
 * and a stopped nginx is shown down once its health probes fail. The section stays hidden on a
 * gateway without HTTP routes (test/browser/status-page.test.ts covers the rest of the page).
 */
import { existsSync } from 'node:fs'
import t, { type Test } from 'tap'
import pino from 'pino'
import { chromium, type Browser } from 'playwright-core'
import { buildConfig } from '../../src/config/config.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { haveNginx, makeMedia, startNginx } from '../helpers/nginx.js'

if (!haveNginx) throw new Error('nginx is not installed (apt-get install nginx; .ci/run installs it)')
const CHROMIUM = existsSync('/usr/lib/chromium/chromium') ? '/usr/lib/chromium/chromium' : '/usr/bin/chromium'

let browser: Browser
t.before(async () => {
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
t.teardown(async () => { await browser?.close() })

async function gateway (t: Test, layer: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway(
    buildConfig([
      {
        port: 0,
        host: '127.0.0.1',
        logLevel: 'silent',
        workers: 0,
        ops: { port: 0 },
        status: { sampleIntervalMs: 500 },
        ...layer
      }
    ]),
    { logger: pino({ level: 'silent' }) }
  )
  t.teardown(async () => { await gw.close() })
  return gw
}

t.test('HTTP routes on the status page: route, traffic, backend health', async t => {
  const media = makeMedia(t, 4)
  const a = await startNginx(t, media.root, 'a')
  const b = await startNginx(t, media.root, 'b')
  const gw = await gateway(t, {
    httpRoutes: [
      {
        path: '/hls',
        backends: [
          { url: `${a.url}/hls`, name: 'web-a' },
          { url: `${b.url}/hls`, name: 'web-b' }
        ]
      }
    ],
    httpProxy: { probeIntervalMs: 200, probeTimeoutMs: 500 }
  })
  const base = `http://127.0.0.1:${gw.port}`
  const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } })
  const consoleErrors: string[] = []
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()) })
  await page.goto(`http://127.0.0.1:${gw.opsPort}/`)
  const cell = (sel: string): string => `document.querySelector(${JSON.stringify(sel)})?.textContent`
  const route = 'tr.route[data-route="/hls"]'
  await page.waitForSelector('#http-section:not([hidden]) ' + route, { timeout: 15_000 })
  t.pass('the HTTP routes section lists /hls')
  t.equal(await page.locator('#httproutes tr.hb').count(), 2, 'two backend rows')
  t.equal(await page.locator('#httproutes tr[data-http-backend="web-b"] td').first().textContent(), 'web-b')
  await page.waitForFunction(
    `${cell('#httproutes tr[data-http-backend="web-a"] [data-testid=health]')} === 'healthy' && ${cell('#httproutes ' +
      'tr[data-http-backend="web-b"] [data-testid=health]')} === 'healthy'`,
    undefined,
    { timeout: 10_000 }
  )
  t.pass('both backends shown healthy')
  t.equal(
    await page.locator(`${route} [data-testid=requests]`).textContent(),
    '0',
    'no request yet (probes are not counted)'
  )

  // Traffic: 3 viewers × (playlist + 3 segments) through the portal.
  let bytes = 0
  for (let v = 0; v < 3; v++) {
    for (const f of ['stream.m3u8', 'seg000.ts', 'seg001.ts', 'seg002.ts']) {
      const r = await fetch(`${base}/hls/${f}`, { headers: { 'user-agent': `viewer-${v}` } })
      t.equal(r.status, 200, `viewer ${v} ${f}`)
      bytes += (await r.arrayBuffer()).byteLength
    }
  }
  // The poll that first shows all 12 also shows the rate since the poll before (> 0).
  await page.waitForFunction(
    `${cell(`${route} [data-testid=requests]`)} === '12' && Number(${cell(`${route} [data-testid=rps]`)}) > 0`,
    undefined,
    { timeout: 10_000 }
  )
  t.pass('the page shows 12 requests and a non-zero request rate')
  await page.waitForFunction(`${cell(`${route} [data-testid=rps]`)} === '0.0'`, undefined, { timeout: 10_000 })
  t.pass('the rate falls back to 0.0 once the requests stop')
  t.equal(await page.locator(`${route} [data-testid=viewers]`).textContent(), '3', 'three viewers')
  t.equal(
    await page.locator(`${route} [data-testid=mb]`).textContent(),
    (bytes / 1e6).toFixed(2),
    `${bytes} bytes shown in MB`
  )
  const perBackend = await page.locator('#httproutes tr.hb [data-testid=requests]').allTextContents()
  t.equal(
    perBackend.map(Number).reduce((x, y) => x + y, 0),
    12,
    `per-backend requests sum to 12 (${perBackend.join(' + ')})`
  )

  await b.kill()
  await page.waitForFunction(
    `${cell('#httproutes tr[data-http-backend="web-b"] [data-testid=health]')} === 'down'`,
    undefined,
    { timeout: 10_000 }
  )
  t.pass('the stopped nginx is shown down (health probes)')
  t.match(await page.locator(route).textContent(), /1\/2 up/, 'the route shows 1/2 up')
  t.same(consoleErrors, [], 'no console errors')
  await page.close()
})

t.test('no HTTP routes: the section stays hidden', async t => {
  const gw = await gateway(t, {})
  const page = await browser.newPage()
  const statusFetched = page.waitForResponse(r => new URL(r.url()).pathname === '/status', { timeout: 10_000 })
  await page.goto(`http://127.0.0.1:${gw.opsPort}/`)
  await statusFetched
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 15_000 })
  t.equal(await page.locator('#http-section').isHidden(), true, 'hidden')
  t.equal(await page.locator('#httproutes tbody tr').count(), 0)
  await page.close()
})

/**
 * The player page through a cluster on loopback: two portals (role portal) in front of two relay
 * nodes (role relay) in front of the embedded origin. Chromium opens /watch/demo at portal A and
 * /watch/live/demo at portal B at the same time; each page's WebSocket is forwarded raw by its
 * portal to the relay its handshake key hashes to, whose front door admits it and runs the RTSP
 * session. Both play (currentTime +5 s, no error, pixels not black); the sessions live on the
 * relays (none on the portals); a token-protected cluster admits a token's page through a
 * portal and refuses one without; everything returns to zero afterwards.
 */
import t, { type Test } from 'tap'
import type { Browser } from 'playwright-core'
import type { Gateway } from '../../src/gateway.js'
import { startGateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'
import { metric, TEST_CLUSTER_SECRET } from '../helpers/gateway-harness.js'
import { establishedTo } from '../helpers/interop.js'
import { waitFor } from '../helpers/wait.js'
import { checkPlays, installErrorProbe, launchChromium, videoErrors, watchPage } from '../helpers/browser.js'

const quietLog = { info () {}, warn () {}, error () {} }
let origin: OriginHandle
let browser: Browser

async function cluster (
  tt: Test, extra: Record<string, unknown> = {}
): Promise<{ portals: Gateway[], relays: Gateway[] }> {
  const base = { host: '127.0.0.1', port: 0, logLevel: 'silent', workers: 0, ops: { port: 0 }, ...extra }
  const secret = { cluster: { secret: TEST_CLUSTER_SECRET } }
  const relays: Gateway[] = []
  for (let i = 0; i < 2; i++) relays.push(await startGateway(buildConfig([{ ...base, role: 'relay', backends: [`rtsp://127.0.0.1:${origin.port}`] }, secret])))
  const portals: Gateway[] = []
  for (let i = 0; i < 2; i++) {
    portals.push(await startGateway(buildConfig([{
      ...base,
      role: 'portal',
      cluster: { relays: relays.map(r => `127.0.0.1:${r.port}`), probeIntervalMs: 500 }
    },
    secret])))
  }
  tt.teardown(async () => { for (const g of [...portals, ...relays]) await g.close() })
  await waitFor(() => portals.every(p => p.remote!.relays().every(r => r.up)), v => v, 8000)
  return { portals, relays }
}

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  browser = await launchChromium()
})
t.teardown(async () => {
  await browser?.close()
  await origin?.close()
})

async function backToZero (tt: Test, gws: Gateway[]): Promise<void> {
  const s = await waitFor(async () => {
    let active = 0
    for (const g of gws) active += await metric(g, 'tunnelgate_tunnels_active')
    return {
      active,
      sessions: gws.reduce((n, g) => n + g.relay.activeSessions, 0),
      backend: establishedTo(origin.port)
    }
  }, v => v.active === 0 && v.sessions === 0 && v.backend === 0, 10_000)
  tt.same(s, { active: 0, sessions: 0, backend: 0 },
    'no session, gauge or backend connection left anywhere in the cluster')
}

t.test('two portals, two relays: /watch/demo at portal A and /watch/live/demo at portal B play at once', async tt => {
  const { portals, relays } = await cluster(tt)
  // A context per test: closing it drops the browser's keep-alive connections before the portals close.
  const ctx = await browser.newContext()
  const pages = await Promise.all([ctx.newPage(), ctx.newPage()])
  const logs = pages.map(p => watchPage(p))
  for (const p of pages) await installErrorProbe(p)
  const runs = await Promise.all([
    checkPlays(pages[0]!, `http://127.0.0.1:${portals[0]!.port}/watch/demo`, 5, 40_000),
    checkPlays(pages[1]!, `http://127.0.0.1:${portals[1]!.port}/watch/live/demo`, 5, 40_000)
  ])
  for (const [i, r] of runs.entries()) {
    tt.ok(r.t1 - r.t0 >= 5, `page ${i}: currentTime advanced ${(r.t1 - r.t0).toFixed(2)} s`)
    tt.ok(r.share > 0.5, `page ${i}: pixels not black`)
    tt.same(await videoErrors(pages[i]!), [], `page ${i}: no video error`)
    tt.same(logs[i]!.errors, [], `page ${i}: no page error`)
  }
  tt.equal(relays.reduce((n, r) => n + r.relay.activeSessions, 0), 2, 'both sessions live on the relay nodes')
  tt.equal(portals.reduce((n, p) => n + p.relay.activeSessions, 0), 0, 'none on the portals')
  // Each portal's status page counts the relay nodes' tunnels (from their /status/summary).
  for (const [i, p] of portals.entries()) {
    const s = await p.ops.feed.sample()
    tt.equal(s.tunnels, 2, `portal ${i}: its status page counts both tunnels`)
    tt.equal(s.relays.reduce((n, r) => n + (r.tunnels ?? 0), 0), 2, `portal ${i}: its relay rows add up to them`)
  }
  let forwarded = 0
  for (const p of portals) forwarded += await metric(p, 'tunnelgate_legs_total', { leg: 'websocket' })
  tt.equal(forwarded, 2, 'each portal forwarded one websocket leg')
  let admitted = 0
  for (const r of relays) {
    admitted += await metric(r, 'tunnelgate_legs_total', { leg: 'websocket', transport: 'websocket' })
  }
  tt.equal(admitted, 2, 'the relays admitted two websocket legs')
  await ctx.close()
  await backToZero(tt, [...portals, ...relays])
})

t.test('a token-protected cluster: the page plays through a portal with a token, is refused without', async tt => {
  const secret = 'cluster-secret-0123456789'
  const { portals, relays } = await cluster(tt, { auth: { tokenSecrets: [secret] } })
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  const none = await page.goto(`http://127.0.0.1:${portals[1]!.port}/watch/demo`)
  tt.equal(none?.status(), 401, 'no token: 401 page at the portal')
  const token = signHmacToken(secret, '/demo', Math.floor(Date.now() / 1000) + 600)
  const r = await checkPlays(page, `http://127.0.0.1:${portals[1]!.port}/watch/demo?token=${encodeURIComponent(token)}`,
    3, 40_000)
  tt.ok(r.t1 - r.t0 >= 3 && r.share > 0.5, 'plays with the token (checked at the portal and again at the relay)')
  await ctx.close()
  await backToZero(tt, [...portals, ...relays])
})

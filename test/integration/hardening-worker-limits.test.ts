/**
 * Issue 5 limits with local relay workers: limits.maxTunnelsPerIp caps the whole gateway, not
 * each worker. The portal counts the GETs it hands off per client address, corrected by the
 * workers' reported per-address counts and their session ends, and refuses a GET over the limit
 * itself (HTTP 503 + Retry-After, TG_ERR_TUN_IP_LIMIT), even when each worker is under it.
 */
import t from 'tap'
import { startTestGateway, errorCount, metric } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import {
  TunnelClient,
  cookieForWorker,
  destroyAllClients,
  getLegFrom,
  getStatusLine
} from '../helpers/tunnel-client.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'

t.teardown(() => { destroyAllClients() })
t.afterEach(() => { destroyAllClients() })

const getFrom = getLegFrom
const statusOf = getStatusLine
const cookieFor = cookieForWorker

t.test('workers: 2, maxTunnelsPerIp: 3 → the 4th tunnel from one address is refused gateway-wide', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { workers: 2, limits: { maxTunnelsPerIp: 3 } })
  const before = await leakSnapshot(gw)
  // Spread over both workers (2 + 1), so neither worker alone reaches 3.
  const open: TunnelClient[] = []
  for (const w of [0, 1, 0]) open.push(await TunnelClient.open(gw.port, { cookie: cookieFor(w) }))
  for (const c of open) t.equal((await c.request('OPTIONS')).status, 200, 'tunnel within the limit works')

  const fourth = await getFrom(gw.port, '127.0.0.1', cookieFor(1))
  t.match(await statusOf(fourth), /^HTTP\/1\.0 503 /, '4th concurrent tunnel from one address: HTTP 503')
  t.equal(fourth.head?.headers.find(([k]) => k.toLowerCase() === 'retry-after')?.[1], '5', '503 carries Retry-After')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_IP_LIMIT'), 1, 'counted as TG_ERR_TUN_IP_LIMIT')
  t.equal(await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.maxTunnelsPerIp' }), 1, 'limit hit counted')

  const other = await getFrom(gw.port, '127.0.0.5', cookieFor(1))
  t.equal(await statusOf(other), 'HTTP/1.0 200 OK', 'another address is not limited')
  other.destroy()
  for (const c of open) t.equal((await c.request('OPTIONS')).status, 200, 'existing tunnels untouched')

  // Close one: its session end reaches the portal and a new tunnel from the address is accepted.
  open.shift()!.close()
  await new Promise(resolve => setTimeout(resolve, 300))
  const again = await TunnelClient.open(gw.port, { cookie: cookieFor(1) })
  t.equal((await again.request('OPTIONS')).status, 200, 'after closing one, a new tunnel is accepted')
  open.push(again)
  t.equal(await errorCount(gw, 'TG_ERR_TUN_IP_LIMIT'), 1, 'no further refusal')

  for (const c of open) c.close()
  fourth.destroy()
  await assertNoLeaks(gw, before, [backend])
})

t.test('legs a worker drops without a session stop counting at the next status refresh', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], {
    workers: 2,
    limits: { maxTunnelsPerIp: 2 },
    balancer: { scrapeIntervalMs: 200 }
  })
  const before = await leakSnapshot(gw)
  const a = await TunnelClient.open(gw.port, { cookie: cookieFor(0) })
  t.equal((await a.request('OPTIONS')).status, 200)
  // A second GET for a live cookie: handed off (counted by the portal), dropped by the worker.
  const dup = await getFrom(gw.port, '127.0.0.1', a.cookie)
  await waitFor(() => dup.closed, 'the duplicate GET dropped', 3000)
  await new Promise(resolve => setTimeout(resolve, 700))
  const b = await TunnelClient.open(gw.port, { cookie: cookieFor(1) })
  t.equal((await b.request('OPTIONS')).status, 200, 'the dropped leg no longer counts: a 2nd tunnel is accepted')
  const third = await getFrom(gw.port, '127.0.0.1', cookieFor(0))
  t.match(await statusOf(third), /^HTTP\/1\.0 503 /, 'the 3rd is refused')
  a.close(); b.close(); third.destroy()
  await assertNoLeaks(gw, before, [backend])
})

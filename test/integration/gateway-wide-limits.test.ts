/**
 * Issue 5 limits over the whole gateway when legs are served elsewhere than where they arrive:
 *  - local relay workers (`workers: 2`): the portal counts sessions (tunnel GETs, plain RTSP,
 *    WebSocket) per address and in total over both workers, and unpaired GETs/POSTs per address and
 *    in total, and refuses a leg over limits.maxTunnelsPerIp / maxTunnels / maxUnpairedLegsPerIp /
 *    maxUnpairedLegs itself, with the in-process relay's answers, even when each worker is under it;
 *  - the portal role (legs spliced to a remote relay node): the portal counts its own spliced legs
 *    and enforces the same four limits.
 * Each case checks the refused client's answer, the error code and limit-hit metrics, that another
 * client keeps working, and that a slot frees when a session ends or a leg pairs or times out.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import type { Gateway } from '../../src/gateway.js'
import { startTestGateway, errorCount, metric } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import {
  GetLeg,
  TunnelClient,
  b64,
  connect,
  cookieForWorker,
  destroyAllClients,
  getLegFrom,
  getStatusLine,
  postLegFrom,
  rtspRequest
} from '../helpers/tunnel-client.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { WsRtspClient } from '../helpers/ws-rtsp-client.js'
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'

t.teardown(() => { destroyAllClients() })

const mine: Array<{ destroy: () => void }> = []
t.afterEach(() => { for (const s of mine) s.destroy(); mine.length = 0; destroyAllClients() })

const LIMITS = { maxTunnelsPerIp: 3, maxTunnels: 4, maxUnpairedLegsPerIp: 2, maxUnpairedLegs: 3 }
const RTSP_503 = 'RTSP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\n\r\n'

const connectFrom = async (port: number, localAddress: string): Promise<net.Socket> =>
  await connect(port, '127.0.0.1', localAddress)
const getFrom = getLegFrom
const postFrom = postLegFrom
const statusOf = getStatusLine
const cookieFor = cookieForWorker

/** Plain RTSP from `local`: sends OPTIONS, resolves with the socket and the first reply head. */
async function rtspFrom (port: number, local: string): Promise<{ socket: net.Socket, reply: string }> {
  const socket = await connectFrom(port, local)
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.on('error', () => {})
  socket.write(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1))
  const reply = await waitFor(
    () => {
      const i = got.indexOf('\r\n\r\n')
      return i === -1 ? undefined : got.slice(0, i + 4)
    },
    'a plain RTSP reply',
    3000
  )
  return { socket, reply }
}

async function wsFrom (port: number, local: string): Promise<WsRtspClient> {
  const c = await WsRtspClient.open(port, { wsOptions: { localAddress: local } })
  mine.push({ destroy: () => c.ws.terminate() })
  return c
}

const retryAfter = (leg: GetLeg): string | undefined =>
  leg.head?.headers.find(([k]) => k.toLowerCase() === 'retry-after')?.[1]
const hits = async (gw: Gateway, limit: string): Promise<number> =>
  await metric(gw, 'tunnelgate_limit_hits_total', { limit })

/**
 * One session of each kind from `from` over a tunnel limit: a GET (HTTP 503 + Retry-After: 5), plain
 * RTSP (RTSP 503 + Retry-After) and a WebSocket (HTTP 503), each counted as `code` and as a hit of
 * limits.`limit` by the counting process (3 of each: this is the limit's first refusal round).
 */
async function refusedThreeWays (
  t: Test,
  gw: Gateway,
  from: string,
  cookie: string,
  limit: string,
  code: string
): Promise<void> {
  const g = await getFrom(gw.port, from, cookie)
  t.match(await statusOf(g), /^HTTP\/1\.0 503 /, `GET over ${limit}: HTTP 503`)
  t.equal(retryAfter(g), '5', 'with Retry-After: 5')
  g.destroy()
  t.equal((await rtspFrom(gw.port, from)).reply, RTSP_503, `plain RTSP over ${limit}: RTSP 503 + Retry-After`)
  t.equal(
    await WsRtspClient.refused(gw.port, { wsOptions: { localAddress: from } }),
    503,
    `WebSocket over ${limit}: HTTP 503`
  )
  t.equal(await errorCount(gw, code), 3, `${code} counted by the portal`)
  t.equal(await hits(gw, `limits.${limit}`), 3, `limits.${limit} hits counted`)
}

/** Where the legs of a case go: a gateway with local workers, or a portal in front of a relay node. */
interface Env {
  /** The gateway that counts (its metrics are read), and the port clients connect to. */
  gw: Gateway
  backend: ScriptedBackend
  /** Sessions and unpaired legs as the counting process sees them. */
  counts: { tunnels: number, unpairedLegs: number }
  /** A cookie for the n-th tunnel (workers: alternately owned by worker 0 and 1). */
  cookie: (n: number) => string
  /** Workers: their own session counts (none reaches the per-address limit alone). */
  perWorker?: () => Promise<number[]>
}

async function workersEnv (t: Test): Promise<Env> {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { workers: 2, limits: LIMITS, tunnel: { pairingTimeoutMs: 2000 } })
  return {
    gw,
    backend,
    counts: gw.workers!,
    cookie: n => cookieFor(n % 2),
    perWorker: async () => (await gw.workers!.status()).map(s => s.tunnels)
  }
}

async function portalEnv (t: Test): Promise<Env> {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const relay = await startTestGateway(t, [backend], { role: 'relay', tunnel: { pairingTimeoutMs: 2000 } })
  const gw = await startTestGateway(t, [], {
    role: 'portal',
    limits: LIMITS,
    tunnel: { pairingTimeoutMs: 2000 },
    cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
  })
  return { gw, backend, counts: gw.remote!, cookie: () => randomBytes(16).toString('base64url') }
}

async function tunnelsCase (t: Test, env: Env): Promise<void> {
  const { gw, backend } = env
  const pool = env.counts
  const cookieFor = env.cookie
  const before = await leakSnapshot(gw)

  // Three sessions from 127.0.0.1 over both workers: a tunnel on each, and plain RTSP.
  const a0 = await TunnelClient.open(gw.port, { cookie: cookieFor(0) })
  const a1 = await TunnelClient.open(gw.port, { cookie: cookieFor(1) })
  for (const a of [a0, a1]) t.equal((await a.request('OPTIONS')).status, 200, 'tunnel GET within the limits')
  const r = await rtspFrom(gw.port, '127.0.0.1')
  t.match(r.reply, /^RTSP\/1\.0 200 /, 'plain RTSP within the limits')
  await waitFor(() => pool.tunnels === 3, 'the portal counts 3 sessions')
  if (env.perWorker !== undefined) t.same((await env.perWorker()).sort(), [1, 2], 'no worker alone holds 3 sessions')

  // limits.maxTunnelsPerIp: the 4th session from 127.0.0.1, of any kind, is refused by the portal.
  await refusedThreeWays(t, gw, '127.0.0.1', cookieFor(1), 'maxTunnelsPerIp', 'TG_ERR_TUN_IP_LIMIT')

  // Another address gets a session (a WebSocket): the 4th in total.
  const w5 = await wsFrom(gw.port, '127.0.0.5')
  t.equal(
    (await w5.request('OPTIONS', 'rtsp://gw/live/cam1')).status,
    200,
    'another address is not limited by 127.0.0.1'
  )
  await waitFor(() => pool.tunnels === 4, 'the portal counts 4 sessions')

  // limits.maxTunnels: a 5th session from any address is refused.
  await refusedThreeWays(t, gw, '127.0.0.6', cookieFor(0), 'maxTunnels', 'TG_ERR_TUN_TOO_MANY')

  for (const a of [a0, a1]) t.equal((await a.request('OPTIONS')).status, 200, 'open tunnel untouched')
  t.equal((await w5.request('OPTIONS', 'rtsp://gw/live/cam1')).status, 200, 'open WebSocket untouched')

  // A session's end frees its slot: in total (127.0.0.5's WebSocket closes, 127.0.0.6 gets in) ...
  w5.ws.terminate()
  await waitFor(() => pool.tunnels === 3, 'the closed WebSocket stops counting', 3000)
  const r6 = await rtspFrom(gw.port, '127.0.0.6')
  t.match(r6.reply, /^RTSP\/1\.0 200 /, 'after a session ended, another address gets one')
  // ... and per address (127.0.0.1's plain RTSP closes, a WebSocket from 127.0.0.1 gets in).
  r.socket.destroy()
  await waitFor(() => pool.tunnels === 3, 'the closed RTSP session stops counting', 3000)
  const w1 = await wsFrom(gw.port, '127.0.0.1')
  t.equal(
    (await w1.request('OPTIONS', 'rtsp://gw/live/cam1')).status,
    200,
    'after its session closed, 127.0.0.1 gets a new one'
  )
  t.equal(await errorCount(gw, 'TG_ERR_TUN_IP_LIMIT'), 3, 'no further per-address refusal')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_TOO_MANY'), 3, 'no further total refusal')

  a0.close(); a1.close(); r6.socket.destroy(); w1.ws.terminate()
  await assertNoLeaks(gw, before, [backend])
  t.equal(pool.tunnels, 0, 'portal session count back to 0')
}

async function unpairedCase (t: Test, env: Env): Promise<void> {
  const { gw, backend } = env
  const pool = env.counts
  const cookieFor = env.cookie
  const before = await leakSnapshot(gw)

  // Two unpaired GETs from 127.0.0.1, one on each worker (neither worker reaches 2 alone).
  const g1 = await getFrom(gw.port, '127.0.0.1', cookieFor(0))
  const g2 = await getFrom(gw.port, '127.0.0.1', cookieFor(1))
  for (const g of [g1, g2]) t.equal(await statusOf(g), 'HTTP/1.0 200 OK', 'unpaired GET within the limits')
  t.equal(pool.unpairedLegs, 2, 'the portal counts 2 unpaired legs')

  // limits.maxUnpairedLegsPerIp: a 3rd unpaired leg from 127.0.0.1 (GET or POST) is refused.
  const g3 = await getFrom(gw.port, '127.0.0.1', cookieFor(0))
  t.match(await statusOf(g3), /^HTTP\/1\.0 503 /, 'GET over maxUnpairedLegsPerIp: HTTP 503')
  t.equal(retryAfter(g3), '5', 'with Retry-After: 5')
  const p3 = await postFrom(gw.port, '127.0.0.1', cookieFor(1))
  await p3.waitClosed(3000, 'a POST over maxUnpairedLegsPerIp closed')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_IP_LIMIT'), 2, 'TG_ERR_TUN_IP_LIMIT counted by the portal')
  t.equal(await hits(gw, 'limits.maxUnpairedLegsPerIp'), 2, 'limit hits counted')

  // Another address: an unpaired POST (the 3rd unpaired leg in total) is held.
  const c5 = cookieFor(0)
  const p5 = await postFrom(gw.port, '127.0.0.5', c5)
  await waitFor(() => pool.unpairedLegs === 3, 'the POST counted as unpaired')
  t.notOk(p5.closed, 'an unpaired POST from another address is held')

  // limits.maxUnpairedLegs: a 4th unpaired leg from anywhere is refused.
  const g6 = await getFrom(gw.port, '127.0.0.6', cookieFor(1))
  t.match(await statusOf(g6), /^HTTP\/1\.0 503 /, 'GET over maxUnpairedLegs: HTTP 503')
  const p6 = await postFrom(gw.port, '127.0.0.6', cookieFor(0))
  await p6.waitClosed(3000, 'a POST over maxUnpairedLegs closed')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_TOO_MANY'), 2, 'TG_ERR_TUN_TOO_MANY counted by the portal')
  t.equal(await hits(gw, 'limits.maxUnpairedLegs'), 2, 'limits.maxUnpairedLegs hits counted')

  // Pairing frees slots: g1's POST pairs it (a POST for an open GET is never refused) ...
  const pair1 = await postFrom(gw.port, '127.0.0.1', g1.cookie!, b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1)))
  t.equal((await g1.response(1)).status, 200, 'a paired tunnel works at the unpaired limit')
  t.equal(pool.unpairedLegs, 2, 'a paired GET no longer counts')
  const g6b = await getFrom(gw.port, '127.0.0.6', cookieFor(1))
  t.equal(await statusOf(g6b), 'HTTP/1.0 200 OK', 'the freed slot takes another address\'s GET')
  // ... and a GET for the held POST's cookie pairs the POST (and is not refused as unpaired).
  const g5 = await getFrom(gw.port, '127.0.0.5', c5)
  t.equal(await statusOf(g5), 'HTTP/1.0 200 OK', 'the GET of a held POST is accepted at the unpaired limit')
  await p5.send(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 7))
  t.equal((await g5.response(7)).status, 200, 'the POST-first tunnel works')
  t.equal(pool.unpairedLegs, 2, 'unpaired: g2 and g6b')

  // The pairing window: the workers drop g2 and g6b (tunnel end), the portal stops counting them.
  await g2.waitClosed(4000, 'the unpaired GET dropped at tunnel.pairingTimeoutMs')
  await waitFor(() => pool.unpairedLegs === 0, 'unpaired GETs stop counting at their tunnel end', 3000)
  // An unpaired POST is counted for the pairing window, then dropped by its worker and uncounted.
  const late = await postFrom(gw.port, '127.0.0.1', cookieFor(1))
  await waitFor(() => pool.unpairedLegs === 1, 'the late POST counted')
  await late.waitClosed(4000, 'the unpaired POST dropped at tunnel.pairingTimeoutMs')
  await waitFor(() => pool.unpairedLegs === 0, 'the late POST stops counting', 1000)
  t.equal(await errorCount(gw, 'TG_ERR_TUN_IP_LIMIT'), 2, 'no further per-address refusal')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_TOO_MANY'), 2, 'no further total refusal')

  for (const l of [g1, g2, g3, g5, g6, g6b, pair1, p5, late]) l.destroy()
  await assertNoLeaks(gw, before, [backend])
}

t.test('workers: 2 — tunnels per address and in total over both workers: GET, plain RTSP, WebSocket', async t => {
  await tunnelsCase(t, await workersEnv(t))
})

t.test('workers: 2 — unpaired GETs and POSTs per address and in total over both workers', async t => {
  await unpairedCase(t, await workersEnv(t))
})

t.test('portal role — the portal enforces the limits over its spliced legs: GET, plain RTSP, WebSocket', async t => {
  await tunnelsCase(t, await portalEnv(t))
})

t.test('portal role — unpaired GETs and POSTs counted at the portal', async t => {
  await unpairedCase(t, await portalEnv(t))
})

t.test('portal role — legs of one tunnel split over two portals stop counting as unpaired at both', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const relay = await startTestGateway(t, [backend], { role: 'relay', tunnel: { pairingTimeoutMs: 20_000 } })
  const portal = async (): Promise<Gateway> =>
    await startTestGateway(t, [], {
      role: 'portal',
      limits: LIMITS,
      tunnel: { pairingTimeoutMs: 20_000 },
      cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
    })
  const p1 = await portal()
  const p2 = await portal()
  const cookie = randomBytes(16).toString('base64url')
  const get = await getFrom(p1.port, '127.0.0.1', cookie)
  t.equal(await statusOf(get), 'HTTP/1.0 200 OK', 'GET through portal 1')
  t.equal(p1.remote!.unpairedLegs, 1, 'portal 1 counts it unpaired')
  const post = await postFrom(p2.port, '127.0.0.1', cookie, b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1)))
  t.equal((await get.response(1)).status, 200, 'its POST through portal 2 pairs it at the relay')
  await waitFor(
    () => p1.remote!.unpairedLegs === 0,
    'portal 1 sees the tunnel paired (RTSP after the GET reply head)',
    2000
  )
  await waitFor(
    () => p2.remote!.unpairedLegs === 0,
    'portal 2 counts the POST paired (the relay said it holds the GET)',
    2000
  )
  t.equal(p1.remote!.tunnels, 1, 'the GET still counts as a session at portal 1')
  t.equal(p2.remote!.tunnels, 0, 'a POST is no session')
  get.destroy(); post.destroy()
  await waitFor(() => p1.remote!.tunnels === 0, 'the closed GET stops counting at portal 1', 2000)
})

/**
 * The routers' shared leg admission (RoutedLegs, src/route/leg-counts.ts), on real loopback
 * sockets: which legs are refused over the limits and how (HTTP 503, RTSP 503, a POST closed), when
 * a routed leg counts as unpaired and when it stops, and that a leg which could not be sent counts nothing.
 */
import t from 'tap'
import net from 'node:net'
import pino from 'pino'
import { createMetrics } from '../../../src/core/metrics.js'
import { RoutedLegs, type RouterCounts } from '../../../src/route/leg-counts.js'
import type { LegLimitSettings } from '../../../src/tunnel/leg-limits.js'

const server = net.createServer()
const accepted: net.Socket[] = []
server.on('connection', s => { s.pause(); accepted.push(s) })
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
const port = (server.address() as net.AddressInfo).port
const clients: net.Socket[] = []
t.teardown(() => { for (const c of clients) c.destroy(); for (const s of accepted) s.destroy(); server.close() })

/** A connected pair: `leg` as the router holds it, `client` as the client reads it. */
async function pair (): Promise<{ leg: net.Socket, client: net.Socket, answer: Promise<string> }> {
  const n = accepted.length
  const client = net.connect(port, '127.0.0.1')
  clients.push(client)
  let got = ''
  client.on('data', d => { got += d.toString('latin1') })
  const answer = new Promise<string>(resolve => client.on('close', () => resolve(got)))
  await new Promise(resolve => client.once('connect', resolve))
  while (accepted.length === n) await new Promise(resolve => setTimeout(resolve, 2))
  return { leg: accepted[n]!, client, answer }
}

function router (limits: Partial<LegLimitSettings> | null,
  sessions = { tunnels: 0, tunnelsFromIp: 0 }): { legs: RoutedLegs, metrics: ReturnType<typeof createMetrics> } {
  const full: LegLimitSettings = {
    maxTunnels: 0,
    maxTunnelsPerIp: 0,
    maxUnpairedLegs: 100,
    maxUnpairedLegsPerIp: 0,
    ...limits
  }
  const counts: RouterCounts = {
    limits: () => limits === null ? null : full,
    pairingMs: () => 60_000,
    sessions: () => sessions
  }
  const metrics = createMetrics({ defaultMetrics: false })
  const legs = new RoutedLegs(counts, metrics, pino({ level: 'silent' }))
  t.teardown(() => legs.clear())
  return { legs, metrics }
}
const errors = async (m: ReturnType<typeof createMetrics>, code: string): Promise<number> =>
  (await m.errorsTotal.get()).values.find(v => v.labels.code === code)?.value ?? 0

t.test('a GET pairs waiting POSTs, or waits itself; a duplicate never counts', async t => {
  const { legs } = router({})
  const sent: string[] = []
  const post = await pair()
  t.ok(legs.acceptPost(post.leg, 'c', 'a', false, () => { sent.push('post'); return true }))
  t.equal(legs.unpaired, 1, 'a POST whose GET is not open here counts')
  t.ok(legs.acceptGet((await pair()).leg, 'c', 'a', false, () => { sent.push('get'); return true }))
  t.equal(legs.unpaired, 0, 'its GET pairs it, and is paired itself')
  t.ok(legs.acceptGet((await pair()).leg, 'd', 'a', false, () => true))
  t.equal(legs.unpaired, 1, 'a GET with no POST waits')
  t.ok(legs.acceptGet((await pair()).leg, 'd', 'a', true, () => true))
  t.equal(legs.unpaired, 1, 'a duplicate GET (its cookie open here) is not counted again')
  t.ok(legs.acceptPost((await pair()).leg, 'd', 'a', true, () => true))
  t.equal(legs.unpaired, 0, 'a POST to an open GET pairs it')
  t.ok(legs.acceptGet((await pair()).leg, 'd', 'a', true, () => true))
  t.equal(legs.unpaired, 0, 'nor once its GET has paired')
  t.same(sent, ['post', 'get'])
})

t.test('a POST stops counting once paired elsewhere; a GET once it ends', async t => {
  const { legs } = router({})
  let paired: (() => void) | null = null
  legs.acceptPost((await pair()).leg, 'c', 'a', false, p => { paired = p; return true })
  t.equal(legs.unpaired, 1)
  paired!()
  paired!()
  t.equal(legs.unpaired, 0, 'once')
  legs.acceptGet((await pair()).leg, 'g', 'a', false, () => true)
  legs.getPaired('g')
  t.equal(legs.unpaired, 0)
})

t.test('a leg that could not be sent counts nothing', async t => {
  const { legs } = router({})
  legs.acceptGet((await pair()).leg, 'g', 'a', false, () => false)
  legs.acceptPost((await pair()).leg, 'p', 'a', false, () => false)
  t.equal(legs.unpaired, 0)
})

t.test('over a limit: GET and WebSocket HTTP 503, plain RTSP RTSP 503, POST closed; counted', async t => {
  const { legs, metrics } = router({ maxUnpairedLegsPerIp: 1 })
  legs.acceptGet((await pair()).leg, 'g1', 'a', false, () => true)
  const get = await pair()
  t.equal(legs.acceptGet(get.leg, 'g2', 'a', false, () => t.fail('not sent') as never), false,
    'a second unpaired GET from a')
  t.match(await get.answer, /^HTTP\/1\.0 503 [^\r]*\r\n(.*\r\n)*Retry-After: 5\r\n/)
  const post = await pair()
  t.equal(legs.acceptPost(post.leg, 'p', 'a', false, () => t.fail('not sent') as never), false)
  t.equal(await post.answer, '', 'a POST is closed without an answer')
  t.ok(legs.acceptPost((await pair()).leg, 'g1', 'a', true, () => true), 'a POST to its open GET is never refused')
  t.equal(await errors(metrics, 'TG_ERR_TUN_IP_LIMIT'), 2)
  t.same((await metrics.limitHitsTotal.get()).values.map(v => [v.labels.limit, v.value]),
    [['limits.maxUnpairedLegsPerIp', 2]])

  const full = router({ maxTunnels: 2 }, { tunnels: 2, tunnelsFromIp: 0 })
  const rtsp = await pair()
  t.equal(full.legs.acceptSession('rtsp', rtsp.leg, 'b'), false)
  t.match(await rtsp.answer, /^RTSP\/1\.0 503 Service Unavailable\r\nRetry-After: 5\r\n/)
  const ws = await pair()
  t.equal(full.legs.acceptSession('websocket', ws.leg, 'b'), false)
  t.match(await ws.answer, /^HTTP\/1\.0 503 /)
  t.equal(await errors(full.metrics, 'TG_ERR_TUN_TOO_MANY'), 2)
  t.ok(full.legs.acceptPost((await pair()).leg, 'x', 'b', false, () => true),
    'a POST opens no session: not checked against maxTunnels')
})

t.test('no limits at this router: nothing refused, unpaired legs still counted', async t => {
  const { legs } = router(null, { tunnels: 1e6, tunnelsFromIp: 1e6 })
  t.ok(legs.acceptSession('rtsp', (await pair()).leg, 'a'))
  t.ok(legs.acceptGet((await pair()).leg, 'g', 'a', false, () => true))
  t.equal(legs.unpaired, 1)
})

/**
 * Relay set changes on loopback (portals and relays in process, one embedded origin):
 *   portal P1 knows relays {R1, R2}; portal P2 knows {R1, R2, R3} (R3 just joined, P1 has not seen it).
 *  1. a tunnel whose cookie's owner differs between the two views (R3 for P2, R1/R2 for P1), GET via
 *     P1 and POST via P2, still pairs: P2 asks R3 (421) then the GET's relay (202) — and plays; with
 *     both legs through P1, the POST goes straight to its GET's relay without a hand-shake;
 *  2. an orphan POST (no GET anywhere) is held by its owner only tunnel.orphanPostMs, then closed
 *     (TG_ERR_TUN_ORPHAN_POST) — fast, not the 30 s pairing window;
 *  3. drain: R1.drain() → its /healthz says draining → P1 sends new tunnels elsewhere, while R1's
 *     open tunnel keeps playing and its re-POST still reaches it; drain() ends when it is gone;
 *  4. a relay leaves (R3 stops): only its tunnels fail, at once (their GETs close); the others play on,
 *     and new tunnels through P2 keep succeeding.
 */
import t from 'tap'
import { rankNodes } from '../../src/balancer/hrw.js'
import type { Gateway } from '../../src/gateway.js'
import { clipDir, gateway, metricValue, origin, until } from '../helpers/cluster.js'
import { GetLeg, newCookie, PostLeg, rtspRequest, TunnelClient } from '../helpers/tunnel-client.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'

interface Split { get: GetLeg, post: PostLeg, cseq: number, url: string }

/** A tunnel with its GET on one port and its POST on another; plays /clip (DESCRIBE, SETUP, PLAY). */
async function splitPlay (
  t: { teardown(fn: () => void): void },
  getPort: number,
  postPort: number,
  cookie: string
): Promise<Split & { statuses: number[] }> {
  const url = 'rtsp://gw.test/clip'
  const get = await GetLeg.open(getPort, { cookie, path: '/clip' })
  t.teardown(() => get.destroy())
  await get.readHead(3000)
  const post = await PostLeg.open(postPort, { cookie, path: '/clip' })
  t.teardown(() => post.destroy())
  const s: Split = { get, post, cseq: 0, url }
  const statuses: number[] = []
  const req = async (
    method: string,
    uri: string,
    headers: Array<[string, string]> = []
  ): Promise<ReturnType<GetLeg['response']> extends Promise<infer R> ? R : never> => {
    const cseq = ++s.cseq
    await post.send(rtspRequest(method, uri, cseq, headers))
    const r = await get.response(cseq, 5000)
    statuses.push(r.status)
    return r
  }
  const d = await req('DESCRIBE', url, [['Accept', 'application/sdp']])
  const base = getHeader(d, 'Content-Base') ?? `${url}/`
  const setup = await req('SETUP', `${base}trackID=1`, [['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']])
  const session = (getHeader(setup, 'Session') ?? '').split(';')[0]!
  await req('PLAY', base, [
    ['Session', session],
    ['Range', 'npt=0.000-']
  ])
  return { ...s, statuses }
}

t.test('relay joins, leaves and drains: only moved tunnels fail, and fast', async t => {
  const media = await clipDir(t, 60)
  const o = await origin(t, media)
  const relayCfg = {
    role: 'relay',
    backends: [{ name: 'o', url: `rtsp://127.0.0.1:${o.port}` }],
    backend: { probeIntervalMs: 0 },
    tunnel: { orphanPostMs: 600, pairingTimeoutMs: 20_000 }
  }
  const r1 = await gateway(t, relayCfg)
  const r2 = await gateway(t, relayCfg)
  const r3 = await gateway(t, relayCfg)
  const id = (r: Gateway): string => `127.0.0.1:${r.port}`
  const byId = new Map([r1, r2, r3].map(r => [id(r), r]))
  const portal = async (relays: Gateway[]): Promise<Gateway> =>
    await gateway(t, {
      role: 'portal',
      cluster: { relays: relays.map(id), probeIntervalMs: 200, connectTimeoutMs: 1000 }
    })
  const p1 = await portal([r1, r2])
  const p2 = await portal([r1, r2, r3])
  const owner = (cookie: string, relays: Gateway[]): Gateway =>
    byId.get(
      rankNodes(
        cookie,
        relays.map(r => ({ id: id(r), weight: 1 }))
      )[0]!
    )!
  /** A fresh cookie whose owners under both views satisfy `ok`. */
  const cookieWhere = (ok: (own12: Gateway, own123: Gateway) => boolean): string => {
    for (let i = 0; i < 10_000; i++) {
      const c = newCookie(24)
      if (ok(owner(c, [r1, r2]), owner(c, [r1, r2, r3]))) return c
    }
    throw new Error('no such cookie')
  }
  const asks = async (result: string): Promise<number> =>
    await metricValue(p2, 'tunnelgate_relay_post_asks_total', { result }) ?? 0

  await t.test('1: owner changed between the portals\' views: GET via P1, POST via P2 still pair', async t => {
    const cookie = cookieWhere((a, b) => b === r3 && a === r1)
    const unknownBefore = await asks('unknown')
    const s = await splitPlay(t, p1.port, p2.port, cookie)
    t.same(s.statuses, [200, 200, 200], 'DESCRIBE, SETUP, PLAY answered')
    await until(async () => s.get.frames().length, n => n >= 5, 3000)
    t.ok(s.get.frames().length >= 5, `media flows (${s.get.frames().length} frames)`)
    t.equal(r1.relay.activeSessions, 1, 'the tunnel lives on R1 (its GET\'s relay)')
    t.equal(await asks('unknown') - unknownBefore, 1, 'P2 asked R3 first (421: not here)')
    t.ok(await asks('known') >= 1, 'then R1 (202: attached)')
    // The same with an unchanged owner: one ask, straight to it.
    const same = cookieWhere((a, b) => a === b && a === r2)
    const u2 = await asks('unknown')
    const s2 = await splitPlay(t, p1.port, p2.port, same)
    t.same(s2.statuses, [200, 200, 200], 'unchanged owner: plays')
    t.equal(await asks('unknown'), u2, 'no 421 on the way')
    // Both legs through one portal: its POST goes straight to the GET's relay, with no hand-shake.
    const asksAt = async (g: Gateway): Promise<number> => {
      let n = 0
      for (const result of [
        'known', 'unknown', 'error'
      ]) n += await metricValue(g, 'tunnelgate_relay_post_asks_total', { result }) ?? 0
      return n
    }
    const before = await asksAt(p1)
    const s3 = await splitPlay(t, p1.port, p1.port, cookieWhere(() => true))
    t.same(s3.statuses, [200, 200, 200], 'GET and POST through one portal: plays')
    await until(async () => s3.get.frames().length, n => n >= 5, 3000)
    t.ok(s3.get.frames().length >= 5, 'media flows')
    t.equal(await asksAt(p1), before, 'the POST was not asked around (its GET\'s relay is known here)')
  })

  await t.test('a portal reports its own unpaired legs (tunnelgate_unpaired_legs)', async t => {
    const unpaired = async (): Promise<number> => await metricValue(p1, 'tunnelgate_unpaired_legs') ?? -1
    const before = await unpaired()
    const get = await GetLeg.open(p1.port, { cookie: newCookie(24), path: '/clip' })
    await get.readHead(3000)
    t.equal(await unpaired(), before + 1, 'a GET without its POST counts at its portal')
    get.destroy()
    await until(unpaired, n => n === before, 3000)
    t.equal(await unpaired(), before, 'and no longer once it has closed')
  })

  await t.test('2: an orphan POST is dropped after tunnel.orphanPostMs, not the pairing window', async t => {
    const cookie = cookieWhere(() => true)
    const own = owner(cookie, [r1, r2, r3])
    const t0 = Date.now()
    const post = await PostLeg.open(p2.port, { cookie, path: '/clip' })
    t.teardown(() => post.destroy())
    await post.send(rtspRequest('OPTIONS', 'rtsp://gw.test/clip', 1))
    await post.waitClosed(5000, 'the orphan POST to close')
    const ms = Date.now() - t0
    t.ok(ms >= 500 && ms < 2500, `closed after ${ms} ms (orphanPostMs 600; pairingTimeoutMs is 20000)`)
    t.equal(
      await metricValue(own, 'tunnelgate_errors_total', { code: 'TG_ERR_TUN_ORPHAN_POST' }),
      1,
      'counted as TG_ERR_TUN_ORPHAN_POST on its owner'
    )
    t.equal(post.received.length, 0, 'the client saw nothing of the hand-shake on its POST')
  })

  await t.test('3: a draining relay gets no new tunnels; its own go on and drain() ends with them', async t => {
    const cookie = cookieWhere(a => a === r1)
    const old = await TunnelClient.open(p1.port, { cookie, path: '/clip', url: 'rtsp://gw.test/clip' })
    t.teardown(() => old.close())
    t.equal((await old.request('DESCRIBE', old.url, [['Accept', 'application/sdp']], { timeoutMs: 5000 })).status, 200)
    const play = await old.play()
    t.equal(play.play.status, 200, 'a tunnel plays on R1')
    const r1Before = r1.relay.activeSessions
    let drained = false
    const draining = r1.drain(20_000).then(() => { drained = true })
    const seen = await until(
      async () => await metricValue(p1, 'tunnelgate_relay_draining', { relay: id(r1) }),
      v => v === 1,
      3000
    )
    t.equal(seen, 1, 'P1 sees R1 draining (its /healthz)')
    // A new tunnel whose owner is R1 goes to R2.
    const fresh = cookieWhere(a => a === r1)
    const r2Before = r2.relay.activeSessions
    const s = await splitPlay(t, p1.port, p1.port, fresh)
    t.same(s.statuses, [200, 200, 200], 'a new tunnel owned by R1 plays')
    t.equal(r2.relay.activeSessions, r2Before + 1, 'on R2')
    t.equal(r1.relay.activeSessions, r1Before, 'not on the draining R1')
    // The old tunnel's re-POST (QuickTime style) still reaches R1.
    const again = await old.openPost()
    const { bytes, cseq } = old.build('GET_PARAMETER', old.url, [['Session', play.session]])
    await again.send(bytes)
    const r = await old.get.response(cseq, 5000)
    t.equal(r.status, 200, 're-POST on the draining relay answered')
    const n = old.get.frames().length
    await until(async () => old.get.frames().length, v => v > n + 3, 3000)
    t.ok(old.get.frames().length > n + 3, 'and its media keeps flowing')
    t.notOk(drained, 'drain() waits while a tunnel is open')
    old.close()
    s.get.destroy(); s.post.destroy()
    await Promise.race([draining, new Promise(resolve => setTimeout(resolve, 5000))])
    t.ok(drained, 'drain() resolved once R1 had no tunnel left')
  })

  await t.test('4: a relay leaves: only its tunnels fail, at once; the rest play on', async t => {
    const onR3 = await splitPlay(t, p2.port, p2.port, cookieWhere((_a, b) => b === r3))
    const onR2 = await splitPlay(t, p2.port, p2.port, cookieWhere((_a, b) => b === r2))
    t.same([onR3.statuses, onR2.statuses], [[200, 200, 200], [200, 200, 200]], 'one tunnel on R3, one on R2')
    const t0 = Date.now()
    await r3.close()
    await onR3.get.waitClosed(3000, 'the R3 tunnel\'s GET to close')
    t.ok(Date.now() - t0 < 3000, `R3's tunnel failed fast: GET closed ${Date.now() - t0} ms after R3 went away`)
    const n = onR2.get.frames().length
    await until(async () => onR2.get.frames().length, v => v > n + 3, 3000)
    t.ok(!onR2.get.closed && onR2.get.frames().length > n + 3, 'the R2 tunnel is untouched and plays on')
    // New tunnels through P2 whose owner was R3 succeed (the next relay in rendezvous order).
    for (let i = 0; i < 3; i++) {
      const s = await splitPlay(t, p2.port, p2.port, cookieWhere((_a, b) => b === r3))
      t.same(s.statuses, [200, 200, 200], `new tunnel ${i + 1} owned by the gone R3 plays`)
    }
  })
})

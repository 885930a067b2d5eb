/**
 * Sign-in abuse over real sockets, as an attacker sends it: wrong Basic passwords until the
 * address (or the user) is backed off on every door (tunnel GET, WebSocket upgrade, HTTP route,
 * plain RTSP), with no scrypt run while refused (counted); the cap on verifications in flight;
 * clients that leave while their password is being checked; a portal handing a Basic-authenticated
 * leg to a relay node with its bytes intact; tables bounded under thousands of addresses.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { startTestGateway, metric } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import { TunnelClient, destroyAllClients, newCookie } from '../helpers/tunnel-client.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'
import { hashPassword } from '../../src/door/auth.js'
import { gateFor, type Gate } from '../../src/door/gate.js'
import { buildConfig } from '../../src/config/config.js'
import type { Gateway } from '../../src/gateway.js'

t.teardown(destroyAllClients)

const FAST = { alice: hashPassword('alice-pw', 1024), bob: hashPassword('bob-pw', 1024) }
const users = [{ user: 'alice', hash: FAST.alice }, { user: 'bob', hash: FAST.bob }]
const basic = (user: string, pw: string): string =>
  `Authorization: Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}\r\n`
const tunnelGet = (auth: string): string =>
  `GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${newCookie()}\r\nAccept: application/x-rtsp-tunnelled\r\n${auth}\r\n`
const wsUpgrade = (auth: string): string =>
  'GET /rtsp-over-websocket HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${Buffer.from(newCookie(16)).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n${auth}\r\n`
const routeGet = (auth: string): string => `GET /hls/a.ts HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n${auth}\r\n`

/** Send `text` from `local`; what came back by the end of the head (or close), or nothing when it hangs up at once. */
async function ask (port: number, local: string, text: string, hangUp?: 'fin' | 'reset'): Promise<string> {
  return await new Promise(resolve => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: local })
    let got = ''
    const done = (): void => { s.destroy(); resolve(got) }
    s.on('connect', () => {
      s.write(text)
      if (hangUp === 'reset') s.write('', () => { s.resetAndDestroy(); resolve('') })
      else if (hangUp === 'fin') done()
    })
    s.on('data', d => { got += d.toString('latin1'); if (got.includes('\r\n\r\n')) done() })
    s.on('error', done)
    s.on('close', done)
    setTimeout(done, 5000).unref()
  })
}
const status = (reply: string): number => Number(/^(?:HTTP\/1\.[01]|RTSP\/1\.0) (\d{3})/.exec(reply)?.[1] ?? 0)
const retryAfter = (reply: string): number => Number(/\r\nRetry-After: (\d+)\r\n/i.exec(reply)?.[1] ?? 0)
const checks = async (gw: Gateway): Promise<number> => await metric(gw, 'tunnelgate_auth_password_checks_total')
/** The gateway's own gate (one per metrics registry; the config passed is not used once it exists). */
const gateOf = (gw: Gateway): Gate => gateFor(buildConfig([]), gw.metrics, gw.logger)

async function httpBackend (t: { teardown (fn: () => void): void }): Promise<number> {
  const s = http.createServer((_req, res) => { res.end('segment') })
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { s.close() })
  return (s.address() as net.AddressInfo).port
}

t.test(
  'per address: three wrong passwords, then 429 + Retry-After on every door, no scrypt; the right password ' +
  'after the delay',
  async t => {
    const backend = await ScriptedBackend.start()
    t.teardown(() => backend.close())
    const web = await httpBackend(t)
    const gw = await startTestGateway(t, [backend], {
      auth: { basic: users, maxFailuresPerAddress: 3, maxFailuresPerUser: 100, backoffMs: 1000, backoffMaxMs: 4000 },
      httpRoutes: [{ path: '/hls', backends: [`http://127.0.0.1:${web}`] }],
      httpProxy: { probeIntervalMs: 0 }
    })
    const before = await leakSnapshot(gw)
    const attacker = '127.0.0.21'
    for (let i = 0; i < 3; i++) {
      t.equal(status(await ask(gw.port, attacker, tunnelGet(basic('alice', `guess-${i}`)))), 401, `guess ${i}: 401`)
    }
    t.equal(await checks(gw), 3, 'three scrypt runs')
    const refused = await ask(gw.port, attacker, tunnelGet(basic('alice', 'guess-3')))
    t.match(refused, /^HTTP\/1\.0 429 Too Many Requests\r\n/, 'tunnel GET: 429')
    t.equal(retryAfter(refused), 1, 'Retry-After: 1')
    t.equal(
      status(await ask(gw.port, attacker, wsUpgrade(basic('alice', 'alice-pw')))),
      429,
      'WebSocket upgrade from the address, even with the right password: 429'
    )
    const route = await ask(gw.port, attacker, routeGet(basic('alice', 'alice-pw')))
    t.equal(status(route), 429, 'HTTP route: 429')
    t.ok(retryAfter(route) >= 1, 'with Retry-After')
    const rtsp = await ask(gw.port, attacker, 'OPTIONS rtsp://gw/live/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n')
    t.match(
      rtsp,
      /^RTSP\/1\.0 503 Service Unavailable\r\nRetry-After: \d+\r\n/,
      'plain RTSP from the address: 503 + Retry-After'
    )
    t.match(
      await ask(gw.port, '127.0.0.22', 'OPTIONS rtsp://gw/live/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n'),
      /^RTSP\/1\.0 403 /,
      'plain RTSP from another address: 403 as before'
    )
    t.equal(await checks(gw), 3, 'no scrypt ran for any refused attempt')
    t.equal(
      status(await ask(gw.port, '127.0.0.22', tunnelGet(basic('alice', 'alice-pw')))),
      200,
      'another address signs in'
    )
    t.equal(
      status(await ask(gw.port, '127.0.0.22', wsUpgrade(basic('alice', 'alice-pw')))),
      101,
      'and upgrades a WebSocket'
    )
    t.equal(
      status(await ask(gw.port, '127.0.0.22', routeGet(basic('alice', 'alice-pw')))),
      200,
      'and fetches from an HTTP route'
    )
    t.ok(
      await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_AUTH_BACKOFF' }) >= 4,
      'TG_ERR_AUTH_BACKOFF counted'
    )
    t.ok(
      await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'auth.maxFailuresPerAddress' }) >= 4,
      'limit hits counted'
    )
    // Waiting out the delay (generously: a busy machine may be slow, the gateway's clock is what counts).
    await new Promise(resolve => setTimeout(resolve, 1200))
    t.equal(
      status(await ask(gw.port, attacker, tunnelGet(basic('alice', 'guess-4')))),
      401,
      'after the delay the next guess is checked (401)'
    )
    const longer = await ask(gw.port, attacker, tunnelGet(basic('alice', 'guess-5')))
    t.equal(status(longer), 429)
    t.equal(retryAfter(longer), 2, 'the refusal grew to 2 s')
    await new Promise(resolve => setTimeout(resolve, 2200))
    t.equal(
      status(await ask(gw.port, attacker, tunnelGet(basic('alice', 'alice-pw')))),
      200,
      'the right password after the delay: the tunnel opens'
    )
    t.equal(
      status(await ask(gw.port, attacker, tunnelGet(basic('alice', 'guess-6')))),
      401,
      'the success reset the count'
    )
    await assertNoLeaks(gw, before, [backend])
  }
)

t.test('per user: guesses from many addresses back the user off for new addresses, never for its own', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], {
    auth: { basic: users, maxFailuresPerAddress: 3, maxFailuresPerUser: 6 }
  })
  t.equal(
    status(await ask(gw.port, '127.0.0.30', tunnelGet(basic('bob', 'bob-pw')))),
    200,
    'bob signs in from his address'
  )
  for (let i = 0; i < 6; i++) {
    t.equal(status(await ask(gw.port, `127.0.0.${31 + (i % 3)}`, tunnelGet(basic('bob', `guess-${i}`)))), 401)
  }
  const runs = await checks(gw)
  t.equal(
    status(await ask(gw.port, '127.0.0.40', tunnelGet(basic('bob', 'bob-pw')))),
    429,
    'a fresh address asking for bob: 429 (per user), right password or not'
  )
  t.equal(await checks(gw), runs, 'no scrypt for it')
  t.equal(
    status(await ask(gw.port, '127.0.0.40', tunnelGet(basic('alice', 'alice-pw')))),
    200,
    'the fresh address signs in as another user'
  )
  t.equal(
    status(await ask(gw.port, '127.0.0.30', tunnelGet(basic('bob', 'bob-pw')))),
    200,
    "bob's own address is not locked out"
  )
  t.equal(await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'auth.maxFailuresPerUser' }), 1)
})

t.test(
  'the cap: with auth.maxVerifications 1, concurrent guesses get 503 + Retry-After, and every 401 is one scrypt run',
  async t => {
    const backend = await ScriptedBackend.start()
    t.teardown(() => backend.close())
    const gw = await startTestGateway(t, [backend], {
      auth: {
        basic: [{ user: 'carol', hash: hashPassword('carol-pw') }],
        maxVerifications: 1,
        maxFailuresPerAddress: 0,
        maxFailuresPerUser: 0
      }
    })
    const replies = await Promise.all(
      Array.from(
        { length: 20 },
        async (_, i) => await ask(gw.port, `127.0.1.${i + 1}`, tunnelGet(basic('carol', `guess-${i}`)))
      )
    )
    const busy = replies.filter(r => status(r) === 503)
    t.ok(busy.length >= 1, `${busy.length} of 20 got 503`)
    t.ok(
      busy.every(r => /^HTTP\/1\.0 503 Service Unavailable\r\n/.test(r) && retryAfter(r) === 1),
      'each with Retry-After: 1'
    )
    t.equal(replies.filter(r => status(r) === 401).length + busy.length, 20, 'the rest were checked and refused')
    t.equal(await checks(gw), 20 - busy.length, 'scrypt ran once per checked guess, never for a refused one')
    t.equal(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_AUTH_BUSY' }), busy.length)
    t.equal(await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'auth.maxVerifications' }), busy.length)
  }
)

t.test(
  'clients that leave while their password is checked: nothing written, nothing leaked, the gateway serves on',
  async t => {
    const backend = await ScriptedBackend.start()
    t.teardown(() => backend.close())
    const gw = await startTestGateway(t, [backend], {
      auth: {
        basic: [{ user: 'carol', hash: hashPassword('carol-pw') }],
        maxFailuresPerAddress: 0,
        maxFailuresPerUser: 0,
        maxVerifications: 4
      }
    })
    const before = await leakSnapshot(gw)
    const gate = gateOf(gw)
    const started = gate.basic.verifications
    // Right and wrong passwords, on the tunnel GET and the WebSocket door; each client hangs up at once.
    // The right password twice: the second shares the first's run (or finds it cached).
    await Promise.all([
      ask(gw.port, '127.0.0.51', tunnelGet(basic('carol', 'carol-pw')), 'reset'),
      ask(gw.port, '127.0.0.52', tunnelGet(basic('carol', 'wrong-1')), 'reset'),
      ask(gw.port, '127.0.0.53', wsUpgrade(basic('carol', 'carol-pw')), 'fin'),
      ask(gw.port, '127.0.0.54', wsUpgrade(basic('carol', 'wrong-2')), 'fin')
    ])
    await waitFor(
      () => gate.basic.verifications >= started + 3 && gate.basic.running === 0,
      'the verifications to end',
      10_000,
      20
    )
    t.equal(await metric(gw, 'tunnelgate_tunnels_active'), 0, 'no tunnel was opened for a client that left')
    t.equal(await metric(gw, 'tunnelgate_unpaired_legs'), 0, 'no leg was handed on')
    const c = await TunnelClient.open(gw.port, {
      cookie: newCookie(),
      getHeaders: [['Authorization', `Basic ${Buffer.from('carol:carol-pw').toString('base64')}`]]
    })
    t.equal(c.get.head?.statusLine, 'HTTP/1.0 200 OK', 'a client that stays gets its tunnel')
    t.equal((await c.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1')).status, 200, 'and it works')
    c.close()
    await assertNoLeaks(gw, before, [backend])
  }
)

t.test('a portal hands a Basic-authenticated leg to a relay node with its bytes intact', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const relay = await startTestGateway(t, [backend], { role: 'relay' })
  const portal = await startTestGateway(t, [], {
    role: 'portal',
    auth: { basic: users },
    cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
  })
  for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${portal.port}/readyz`)).status !== 200; i++) {
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const c = await TunnelClient.open(portal.port, {
    cookie: newCookie(),
    getHeaders: [
      ['Authorization', `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`],
      ['X-After-Auth', 'kept']
    ]
  })
  t.equal(c.get.head?.statusLine, 'HTTP/1.0 200 OK', 'the relay node answered the GET the portal verified')
  t.equal((await c.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1')).status, 200, 'the tunnel works through both')
  c.close()
})

t.test('thousands of distinct addresses: the back-off table stays at auth.backoffEntries', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { auth: { basic: users, backoffEntries: 200 } })
  const gate = gateOf(gw)
  // Malformed credentials: a counted failure that costs no scrypt, so the flood is fast.
  for (let i = 0; i < 2000; i += 100) {
    await Promise.all(
      Array.from(
        { length: 100 },
        async (_, j) =>
          await ask(
            gw.port,
            `127.2.${(i + j) >> 8}.${(i + j) & 255}`,
            tunnelGet('Authorization: Basic bm9jb2xvbg==\r\n')
          )
      )
    )
  }
  t.equal(gate.backoffSizes.addresses, 200, '2,000 addresses failed; 200 remembered')
  t.equal(await checks(gw), 0, 'none ran scrypt')
})

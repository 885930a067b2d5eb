/**
 * Attacks on memory, on backends and on the live key space, with raw sockets and backends written
 * to misbehave:
 *  - a WebSocket client that pings and never reads, a live viewer that sends malformed requests and
 *    never reads its GET: closed once its output budget is spent, nothing queued without bound;
 *  - `$` frames on the GET leg towards a backend that stopped reading: the GET is paused, the
 *    client meets TCP backpressure, the gateway holds at most limits.backendOutputBytes;
 *  - a backend that grants a new Session id per reply: the tunnel is closed at
 *    limits.sessionsPerTunnel, with at most that many TEARDOWNs;
 *  - requests carrying control bytes or header names hidden in other text, against a backend that
 *    parses like live555 (finds `Transport:` anywhere and would send UDP to the client_port it
 *    finds): refused with RTSP 400, nothing forwarded, no datagram sent;
 *  - one live stream spelt many ways: one backend session;
 *  - an SDP larger than 256 KiB still has the backend address masked.
 */
import t from 'tap'
import net from 'node:net'
import dgram from 'node:dgram'
import { createHash, randomBytes } from 'node:crypto'
import type { Gateway } from '../../src/gateway.js'
import { startTestGateway, errorCount, metric } from '../helpers/gateway-harness.js'
import { TunnelClient, destroyAllClients, frame } from '../helpers/tunnel-client.js'
import { pause, waitFor } from '../helpers/wait.js'
import { ScriptedBackend, dssScript, type BackendConn } from '../helpers/scripted-backend.js'
import { origin, originSessions, clipDir } from '../helpers/cluster.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { findBackendAuthorityLeak } from '../../src/tunnel/codec/url-rewrite.js'

t.teardown(() => { destroyAllClients() })

/** A flag that turns true once `code` has been counted once more than now (polled). */
async function countedOnce (t: { teardown (fn: () => void): void }, gw: Gateway, code: string): Promise<() => boolean> {
  const before = await errorCount(gw, code)
  let seen = false
  const timer = setInterval(() => { void errorCount(gw, code).then(n => { if (n > before) seen = true }) }, 20)
  t.teardown(() => clearInterval(timer))
  return () => seen
}

/** A raw WebSocket upgrade to the RTSP path; resolves once the 101 arrived. */
async function rawWebSocket (port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1')
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  s.write(
    `GET /rtsp-over-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`
  )
  await new Promise<void>(resolve => {
    let h = ''
    const on = (d: Buffer): void => {
      h += d.toString('latin1')
      if (h.includes('\r\n\r\n')) {
        s.off('data', on)
        resolve()
      }
    }
    s.on('data', on)
  })
  return s
}

/** A masked client frame (RFC 6455 §5.2). */
function clientFrame (opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4)
  const head =
    payload.length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | payload.length])
      : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff])
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))
  return Buffer.concat([head, mask, body])
}

/** Write `chunk` as fast as TCP takes it for up to `ms` or until `stop()`; bytes the kernel accepted. */
async function flood (s: net.Socket, chunk: Buffer, ms: number, stop: () => boolean = () => false): Promise<number> {
  const end = Date.now() + ms
  while (Date.now() < end && !s.destroyed && !stop()) {
    if (!s.write(chunk)) {
      await Promise.race([new Promise(resolve => s.once('drain', resolve)), pause(Math.max(1, end - Date.now()))])
    }
  }
  return s.bytesWritten - s.writableLength
}

t.test('WebSocket pings from a client that never reads: closed at its output budget', async t => {
  const gw = await startTestGateway(t, ['rtsp://127.0.0.1:9'], { limits: { clientOutputBytes: 1024 * 1024 } })
  const overflowed = await countedOnce(t, gw, 'TG_ERR_TUN_OUTPUT_OVERFLOW')
  const s = await rawWebSocket(gw.port)
  s.pause()
  const ping = clientFrame(0x9, randomBytes(125))
  const batch = Buffer.concat(Array.from({ length: 400 }, () => ping))
  const sent = await flood(s, batch, 20_000, overflowed)
  t.ok(overflowed(), `closed for TG_ERR_TUN_OUTPUT_OVERFLOW after ${(sent / 1e6).toFixed(1)} MB of pings`)
  t.ok(sent < 200 * 1024 * 1024, 'long before 200 MB')
  await waitFor(
    async () => (await metric(gw, 'tunnelgate_tunnels_active')) === 0 || undefined,
    'the session closed',
    5000
  )
  s.destroy()
})

t.test('a live viewer sending malformed requests without reading its GET: closed at its output budget', async t => {
  const media = await clipDir(t, 20)
  const o = await origin(t, media)
  const gw = await startTestGateway(t, [`rtsp://127.0.0.1:${o.port}`], {
    routes: [
      { path: '/', backends: [] },
      { path: '/live', backends: [], live: true }
    ],
    limits: { clientOutputBytes: 256 * 1024 }
  })
  const overflowed = await countedOnce(t, gw, 'TG_ERR_TUN_OUTPUT_OVERFLOW')
  const c = await TunnelClient.open(gw.port, { path: '/live/clip', url: 'rtsp://gw.test/live/clip' })
  t.equal(
    (await c.request('DESCRIBE', c.url, [['Accept', 'application/sdp']], { timeoutMs: 15_000 })).status,
    200,
    'the live path answers'
  )
  c.get.socket.pause()
  const bad = Buffer.from(Buffer.from('BAD LINE\r\nCSeq: 1\r\n\r\n').toString('base64'))
  const batch = Buffer.concat(Array.from({ length: 2000 }, () => bad))
  const sent = await flood(c.post.socket, batch, 20_000, overflowed)
  t.ok(overflowed(), `closed for TG_ERR_TUN_OUTPUT_OVERFLOW after ${(sent / 1e6).toFixed(1)} MB of malformed requests`)
  c.get.socket.resume()
  await c.get.waitClosed(5000, 'the viewer closed')
})

t.test('$ frames on the GET leg towards a backend that stopped reading: paused, bounded', async t => {
  const backend = await ScriptedBackend.start(
    dssScript({
      before: (req, conn) => {
        if (req.method === 'PLAY') {
          conn.respond(req, 200, 'OK', [['Session', '7368154426419384412']])
          conn.socket.pause()
          return true
        }
        return false
      }
    })
  )
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend])
  const c = await TunnelClient.open(gw.port)
  await c.play()
  const conn = backend.conns[0]!
  const rssBefore = process.memoryUsage().rss
  const sent = await flood(
    c.get.socket,
    Buffer.concat(Array.from({ length: 16 }, (_, i) => frame(1, Buffer.alloc(60_000, i)))),
    4000
  )
  const gwToBackend = gwSocketTo(backend.port)
  t.ok(
    sent < 48 * 1024 * 1024,
    `the client could push only ${(sent / 1e6).toFixed(1)} MB in 4 s (TCP backpressure reached it)`
  )
  t.ok(
    gwToBackend !== undefined && gwToBackend.writableLength <= gw.relay.config.limits.backendOutputBytes,
    `at most limits.backendOutputBytes queued towards the backend (${gwToBackend?.writableLength ?? '?'})`
  )
  t.ok(
    process.memoryUsage().rss - rssBefore < 96 * 1024 * 1024,
    `RSS grew ${((process.memoryUsage().rss - rssBefore) / 1e6).toFixed(0)} MB`
  )
  t.notOk(conn.closed, 'the tunnel is held, not dropped')
  c.close()
})

/** The gateway's socket connected to `port` (in this process). */
function gwSocketTo (port: number): net.Socket | undefined {
  const handles = (process as unknown as { _getActiveHandles (): unknown[] })._getActiveHandles()
  return handles.find(
    (h): h is net.Socket => h instanceof net.Socket && h.remotePort === port && h.remoteAddress === '127.0.0.1'
  )
}

t.test('a backend granting a new Session id per reply: closed at limits.sessionsPerTunnel', async t => {
  let n = 0
  const teardowns: string[] = []
  const backend = await ScriptedBackend.start(dssScript({
    before: (req, conn) => {
      if (req.method === 'TEARDOWN') {
        teardowns.push(getHeader(req, 'Session') ?? '')
        conn.respond(req, 200, 'OK')
        return true
      }
      if (req.method !== 'OPTIONS') return false
      conn.respond(req, 200, 'OK', [['Session', `s${++n}`], ['Public', 'OPTIONS, DESCRIBE']])
      return true
    }
  }))
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { limits: { sessionsPerTunnel: 8 } })
  const c = await TunnelClient.open(gw.port)
  const statuses: number[] = []
  for (let i = 0; i < 12 && !c.get.closed; i++) {
    statuses.push((await c.request('OPTIONS', c.url).catch(() => ({ status: 0 }))).status)
  }
  t.same(statuses.slice(0, 8), Array(8).fill(200), 'the first 8 ids are kept')
  t.equal(statuses[8], 502, 'the 9th new id: RTSP 502')
  await c.get.waitClosed(5000, 'the tunnel closed')
  t.equal(await errorCount(gw, 'TG_ERR_BACKEND_TOO_MANY_SESSIONS'), 1, 'TG_ERR_BACKEND_TOO_MANY_SESSIONS')
  await pause(300)
  t.ok(teardowns.length <= 8, `at most 8 TEARDOWNs (${teardowns.length})`)
})

/** A backend parsing like live555: `Transport:` found anywhere; UDP sent to the client_port it names. */
function live555LikeScript (udp: dgram.Socket, seen: Buffer[]): Parameters<typeof ScriptedBackend.start>[0] {
  const inner = dssScript()
  return (unit, conn: BackendConn) => {
    if (unit.kind === 'request') {
      seen.push(Buffer.from(unit.raw))
      const text = unit.raw.toString('latin1')
      const at = text.search(/Transport:/i)
      const m = at === -1 ? null : /^Transport:\s*([^\r\n]*)/i.exec(text.slice(at))
      const port = m === null ? null : /client_port=(\d+)/.exec(m[1]!)?.[1]
      if (unit.method === 'SETUP' && port !== undefined && port !== null) {
        udp.send(Buffer.from('RTP to the port a client chose'), Number(port), '127.0.0.1')
      }
    }
    inner(unit, conn)
  }
}

t.test('control bytes and hidden header names never reach a backend', async t => {
  const udp = dgram.createSocket('udp4')
  const victim = dgram.createSocket('udp4')
  await new Promise<void>(resolve => victim.bind(0, '127.0.0.1', () => resolve()))
  const victimPort = (victim.address()).port
  let datagrams = 0
  victim.on('message', () => { datagrams++ })
  t.teardown(() => { udp.close(); victim.close() })
  const seen: Buffer[] = []
  const backend = await ScriptedBackend.start(live555LikeScript(udp, seen))
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend])
  const smuggled = `Transport: RTP/AVP;unicast;client_port=${victimPort}-${victimPort + 1}`
  const attacks: Array<[string, Array<[string, string]>, string?]> = [
    ['bare CR before a hidden line', [['X-A', `a\r${smuggled}`]]],
    ['NUL', [['X-A', `a\x00${smuggled}`]]],
    ['vertical tab', [['X-A', `a\x0b${smuggled}`]]],
    ['form feed', [['X-A', `a\x0c${smuggled}`]]],
    ['DEL', [['X-A', `a\x7f${smuggled}`]]],
    ['in another value', [['User-Agent', `x ${smuggled}`]]],
    ['in a header name', [[`X-${smuggled.split(':')[0]!}`, smuggled.split(': ')[1]!]]],
    ['in the URL', [], `/demo/trackID=1?${smuggled.replace(/ /g, '')}`],
    ['Transport twice', [['Transport', `RTP/AVP;unicast;client_port=${victimPort}-${victimPort + 1}`]]],
    ['hidden CSeq', [['X-B', 'a CSeq: 99']]],
    ['hidden Content-Length', [['X-B', 'a Content-Length: 500']]]
  ]
  for (const [name, headers, path] of attacks) {
    const c = await TunnelClient.open(gw.port, { path: '/demo', url: 'rtsp://gw.test/demo' })
    const d = await c.request('DESCRIBE', c.url, [['Accept', 'application/sdp']])
    t.equal(d.status, 200, `${name}: DESCRIBE first`)
    const r = await c.request('SETUP', `rtsp://gw.test${path ?? '/demo/trackID=1'}`, [
      ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
      ...headers
    ])
    t.equal(r.status, 400, `${name}: RTSP 400`)
    c.close()
  }
  await pause(300)
  t.equal(seen.filter(b => b.toString('latin1').startsWith('SETUP')).length, 0, 'no SETUP reached the backend')
  for (const b of seen) t.notMatch(b.toString('latin1'), /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)/, 'no control byte or bare CR in what the backend got')
  t.equal(datagrams, 0, 'no datagram reached the port the client chose')
  t.ok(await errorCount(gw, 'TG_ERR_RTSP_AMBIGUOUS') >= 6, 'TG_ERR_RTSP_AMBIGUOUS counted')
  t.ok(await errorCount(gw, 'TG_ERR_RTSP_MALFORMED') >= 5, 'TG_ERR_RTSP_MALFORMED counted for the control bytes')
  // The same backend does send media where a client may legitimately ask for it: proof the oracle works.
  const ok = await TunnelClient.open(gw.port, { path: '/demo', url: 'rtsp://gw.test/demo' })
  await ok.request('DESCRIBE', ok.url)
  t.equal(
    (
      await ok.request('SETUP', 'rtsp://gw.test/demo/trackID=1', [
        ['Transport', `RTP/AVP/TCP;unicast;interleaved=0-1;client_port=${victimPort}-${victimPort + 1}`]
      ])
    ).status,
    200,
    'a TCP SETUP is forwarded'
  )
  await waitFor(
    () => datagrams > 0 || undefined,
    'the live555-like backend to act on client_port (the oracle is live)',
    3000
  )
  ok.close()
})

t.test('one live stream spelt many ways: one backend session', async t => {
  const media = await clipDir(t, 20)
  const o = await origin(t, media)
  const gw = await startTestGateway(t, [`rtsp://127.0.0.1:${o.port}`], {
    routes: [
      { path: '/', backends: [] },
      { path: '/live', backends: [], live: true }
    ],
    live: { lingerMs: 2000 }
  })
  const spellings = [
    '/live/clip',
    '/live//clip',
    '/live/./clip',
    '/live/%63lip',
    '/live/clip/',
    '//live/clip',
    '/live/clip?x=1',
    '/live/clip?x=2'
  ]
  const clients: TunnelClient[] = []
  for (const p of spellings) {
    const c = await TunnelClient.open(gw.port, { path: '/live/clip', url: `rtsp://gw.test${p}` })
    clients.push(c)
    t.equal(
      (await c.request('DESCRIBE', c.url, [['Accept', 'application/sdp']], { timeoutMs: 15_000 })).status,
      200,
      `DESCRIBE ${p}`
    )
  }
  t.equal(gw.relay.live.paths().length, 1, `one live path (${gw.relay.live.paths().map(p => p.path).join(', ')})`)
  t.equal(await originSessions(o), 1, 'one backend session')
  for (const c of clients) c.close()
  t.match(
    await (async () => {
      const c = await TunnelClient.open(gw.port, { url: 'rtsp://gw.test/live/../clip' })
      const r = await c.request('DESCRIBE', c.url)
      c.close()
      return r.status
    })(),
    400,
    '.. is refused'
  )
})

t.test('an SDP over 256 KiB still has the backend address masked and its controls rewritten', async t => {
  const backend = await ScriptedBackend.start(dssScript({
    before: (req, conn) => {
      if (req.method !== 'DESCRIBE') return false
      const self = `rtsp://${conn.backend.authority}`
      const pad = Array.from(
        { length: 6000 },
        (_, i) => `a=x-pad-${i}:${createHash('sha256').update(String(i)).digest('hex')}`
      ).join('\r\n')
      const sdp = `v=0\r\no=- 1 1 IN IP4 ${conn.backend.host}\r\ns=big\r\nc=IN IP4 ${conn.backend.host}\r\nt=0 0\r\n${
        pad}\r\na=control:${self}/big/\r\nm=video 0 RTP/AVP 96\r\na=control:${self}/big/trackID=1\r\n`
      conn.respond(req, 200, 'OK', [['Content-Base', `${self}/big/`], ['Content-Type', 'application/sdp']], sdp)
      return true
    }
  }))
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend])
  const c = await TunnelClient.open(gw.port, { path: '/big', url: 'rtsp://gw.test/big' })
  const d = await c.request('DESCRIBE', c.url, [], { timeoutMs: 5000 })
  t.equal(d.status, 200)
  t.ok(d.body.length > 256 * 1024, `an SDP of ${d.body.length} bytes`)
  t.notOk(findBackendAuthorityLeak(d.raw, backend.authority), 'no backend authority in the reply')
  t.notOk(d.body.toString('latin1').includes(`IN IP4 ${backend.host}`), 'o= and c= masked')
  t.match(d.body.toString('latin1'), /a=control:rtsp:\/\/gw\.test\/big\/trackID=1/, 'controls rewritten')
  c.close()
})

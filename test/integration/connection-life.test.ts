/**
 * Reference §6 checks 19–23 (connection life) over real sockets: POST close and re-POST,
 * overlapping POSTs, GET close → TEARDOWN + FIN, backend close, idle reaping with short timers,
 * and a client that stops reading its GET while the backend floods.
 */
import net from 'node:net'
import t from 'tap'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { ScriptedBackend, dssScript, type BackendConn } from '../helpers/scripted-backend.js'
import { errorCount, metric, settled, startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, b64, destroyAllClients, frame, patternBytes } from '../helpers/tunnel-client.js'
import { pause, waitFor } from '../helpers/wait.js'

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend], { backend: { teardownGraceMs: 300 } })
t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]) })

async function playing (port = gw.port): Promise<{ tc: TunnelClient, conn: BackendConn, session: string }> {
  const tc = await TunnelClient.open(port)
  const { session } = await tc.play()
  return { tc, conn: backend.conns.at(-1)!, session }
}

/** The gateway's own end of a client or backend connection (same process). */
function gatewaySocket (localPort: number, remotePort: number): net.Socket | undefined {
  const handles = (process as unknown as { _getActiveHandles (): unknown[] })._getActiveHandles()
  return handles.find(
    (h): h is net.Socket => h instanceof net.Socket && h.localPort === localPort && h.remotePort === remotePort
  )
}

t.test('check 19: POST closed after PLAY, RTP keeps flowing, a later POST carries PAUSE/PLAY/TEARDOWN', async tt => {
  const { tc, conn, session } = await playing()
  tc.post.end()
  await tc.post.waitClosed(2000, 'POST closed')
  // Let the gateway see the POST's FIN before media flows (the GET must not follow it).
  await waitFor(
    () => gatewaySocket(gw.port, tc.post.socket.localPort ?? -1) === undefined || undefined,
    'gateway side of the POST closed'
  )
  const f = frame(0, patternBytes(1200, 4))
  for (let i = 0; i < 5; i++) conn.sendFrame(0, patternBytes(1200, 4))
  await waitFor(() => tc.get.frames().filter(x => x.raw.equals(f)).length >= 5, 'RTP after the POST closed')
  tt.notOk(tc.get.closed, 'GET open without a POST')
  tt.equal(await metric(gw, 'tunnelgate_tunnels_active'), 1, 'tunnel still active')
  await pause(300) // a quiet gap (QuickTime re-POSTs much later; the idle timer is not involved here)
  const post2 = await tc.openPost()
  tt.equal(
    (await tc.request('PAUSE', tc.url, [['Session', session]], { post: post2 })).status,
    200,
    'PAUSE on the new POST'
  )
  tt.equal(
    (
      await tc.request(
        'PLAY',
        tc.url,
        [
          ['Session', session],
          ['Range', 'npt=5-']
        ],
        { post: post2 }
      )
    ).status,
    200,
    'PLAY on the new POST'
  )
  tt.equal(
    (await tc.request('TEARDOWN', tc.url, [['Session', session]], { post: post2 })).status,
    200,
    'TEARDOWN on the new POST'
  )
  tt.same(
    conn
      .requests()
      .slice(-3)
      .map(r => r.method),
    ['PAUSE', 'PLAY', 'TEARDOWN'],
    'backend got them on the same connection'
  )
  tc.close()
})

t.test('check 20: two overlapping POSTs each carrying one message are both delivered whole', async tt => {
  const tc = await TunnelClient.open(gw.port)
  tt.equal((await tc.request('OPTIONS')).status, 200, 'tunnel up')
  const conn = backend.conns.at(-1)!
  const m1 = tc.build('DESCRIBE', tc.url, [['Accept', 'application/sdp'], ['User-Agent', 'axis-flash']])
  const m2 = tc.build('OPTIONS', tc.url, [['User-Agent', 'axis-flash']])
  const e1 = b64(m1.bytes)
  const e2 = b64(m2.bytes)
  // Axis: one short POST per message with an exact Content-Length; the first is still sending when the second starts.
  const p1 = await tc.openPost(e1.slice(0, 30), {
    headers: [],
    onlyHeaders: [
      ['Content-Type', 'application/x-rtsp-tunnelled'],
      ['Content-Length', String(e1.length)]
    ]
  })
  const p2 = await tc.openPost(e2, {
    onlyHeaders: [
      ['Content-Type', 'application/x-rtsp-tunnelled'],
      ['Content-Length', String(e2.length)]
    ]
  })
  await pause(5)
  await p1.sendRaw(e1.slice(30))
  tt.equal((await tc.get.response(m1.cseq)).status, 200, 'message of the first POST answered')
  tt.equal((await tc.get.response(m2.cseq)).status, 200, 'message of the second POST answered')
  const reqs = conn.requests()
  const d = reqs.find(r => getHeader(r, 'CSeq') === String(m1.cseq))
  const o = reqs.find(r => getHeader(r, 'CSeq') === String(m2.cseq))
  tt.ok(
    d !== undefined &&
      d.raw.toString('latin1') === m1.bytes.toString('latin1').replace(tc.url, `rtsp://${backend.authority}/live/cam1`),
    'DESCRIBE not truncated'
  )
  tt.ok(
    o !== undefined &&
      o.raw.toString('latin1') === m2.bytes.toString('latin1').replace(tc.url, `rtsp://${backend.authority}/live/cam1`),
    'OPTIONS not truncated'
  )
  p2.end(); p1.end()
  await p1.waitClosed(); await p2.waitClosed()
  tt.equal((await tc.request('OPTIONS')).status, 200, 'tunnel survives both POSTs closing (main POST still open)')
  tc.close()
})

t.test(
  'check 21: GET close → TEARDOWN with Session then FIN within 1 s; backend close → GET and POSTs closed',
  async tt => {
    {
      const { tc, conn, session } = await playing()
      const t0 = Date.now()
      tc.get.destroy()
      const td = await conn.waitRequest('TEARDOWN', 1, 2000)
      tt.equal(getHeader(td, 'Session'), session, 'TEARDOWN carries the granted Session')
      await waitFor(() => conn.finAt !== 0, 'backend FIN', 2000)
      tt.ok(conn.finAt - t0 < 1000, `FIN ${conn.finAt - t0} ms after the GET closed`)
      tt.ok(conn.units.indexOf(td) === conn.units.length - 1, 'TEARDOWN is the last thing the backend got')
      await tc.post.waitClosed(2000, 'POST closed with the GET')
    }
    {
      // A backend that never answers the TEARDOWN still gets its FIN after the grace time.
      const { tc, conn } = await playing()
      const t0 = Date.now()
      const old = backend.script
      backend.script = (u, c) => {
        if (c !== conn) old(u, c)
      }
      tc.get.destroy()
      await conn.waitRequest('TEARDOWN', 1, 2000)
      await waitFor(() => conn.finAt !== 0, 'backend FIN without a TEARDOWN reply', 2000)
      backend.script = old
      tt.ok(conn.finAt - t0 < 1000, `FIN ${conn.finAt - t0} ms after the GET closed (silent backend)`)
    }
    {
      const { tc, conn } = await playing()
      const extra = await tc.openPost()
      conn.socket.end()
      await tc.get.waitClosed(2000, 'GET closed after the backend closed')
      await tc.post.waitClosed(2000, 'POST closed after the backend closed')
      await extra.waitClosed(2000, 'second POST closed after the backend closed')
      tt.pass('backend close closed the GET and every POST')
    }
  }
)

t.test('check 22: keepalives hold a paused tunnel past the idle timeout; silence is reaped', async tt => {
  const IDLE = 1500
  const gw2 = await startTestGateway(tt, [backend], { tunnel: { idleTimeoutMs: IDLE } })
  const tc = await TunnelClient.open(gw2.port)
  const { session } = await tc.play()
  tt.equal((await tc.request('PAUSE', tc.url, [['Session', session]])).status, 200, 'paused')
  const t0 = Date.now()
  while (Date.now() - t0 < 5000) {
    await pause(500)
    const r = await tc.request('GET_PARAMETER', tc.url, [['Session', session]])
    if (r.status !== 200) tt.fail(`keepalive answered ${r.status}`)
  }
  tt.notOk(
    tc.get.closed,
    `paused tunnel with keepalives every 500 ms alive after ${Date.now() - t0} ms (idle timeout ${IDLE} ms)`
  )
  const before = await errorCount(gw2, 'TG_ERR_TUN_IDLE')
  const quietFrom = Date.now()
  await tc.get.waitClosed(IDLE * 3, 'idle tunnel reaped')
  const quiet = tc.get.closedAt - quietFrom
  tt.ok(quiet >= IDLE - 200 && quiet < IDLE * 2 + 500, `reaped after ${quiet} ms of silence`)
  tt.equal(await errorCount(gw2, 'TG_ERR_TUN_IDLE'), before + 1, 'TG_ERR_TUN_IDLE counted')
  await tc.post.waitClosed(2000, 'POST closed too')
  await settled(gw2, [backend])
})

/**
 * A well-behaved backend sender (like DSS): writes 65539-byte frames and waits for 'drain'
 * after every write that returns false. Without backpressure it would send without end.
 */
class PacedSender {
  readonly sent: Buffer[] = []
  lastProgress = Date.now()
  stopped = false
  readonly done: Promise<void>
  readonly #conn: BackendConn

  constructor (conn: BackendConn) {
    this.#conn = conn
    this.done = this.#run()
  }

  get bytes (): number { return this.sent.reduce((n, f) => n + f.length, 0) }

  async #run (): Promise<void> {
    const s = this.#conn.socket
    while (!this.stopped && !s.destroyed) {
      const f = frame(0, patternBytes(65535, this.sent.length + 1))
      this.sent.push(f)
      if (!this.#conn.send(f)) {
        await new Promise<void>(resolve => {
          const fin = (): void => { s.off('drain', fin); s.off('close', fin); resolve() }
          s.on('drain', fin)
          s.on('close', fin)
        })
      }
      this.lastProgress = Date.now()
    }
  }
}

t.test(
  'check 23: a client that stops reading: gateway buffering stays bounded, backpressure reaches the backend',
  async tt => {
    const { tc, conn } = await playing()
    tc.get.socket.pause()
    const gwGet = gatewaySocket(gw.port, tc.get.socket.localPort!)
    const gwBackend = gatewaySocket(conn.socket.remotePort!, backend.port)
    tt.ok(
      gwGet !== undefined && gwBackend !== undefined,
      'found the gateway ends of the GET and the backend connection'
    )
    const sender = new PacedSender(conn)
    let maxQueued = 0
    let maxHeld = 0
    await waitFor(
      () => {
        maxQueued = Math.max(maxQueued, gwGet!.writableLength)
        maxHeld = Math.max(maxHeld, gwBackend!.readableLength)
        return Date.now() - sender.lastProgress > 500
      },
      'the backend sender to block on backpressure',
      15_000,
      10
    )
    const blockedAt = sender.bytes
    tt.ok(
      conn.socket.writableLength > 0,
      `backend blocked with ${conn.socket.writableLength} bytes unsent after ${
        (blockedAt / 1e6).toFixed(1)} MB (no drain for 500 ms)`
    )
    tt.ok(maxQueued <= 1024 * 1024, `gateway queue towards the client stayed small (max ${maxQueued} bytes)`)
    tt.ok(maxHeld <= 1024 * 1024, `gateway held at most ${maxHeld} unread backend bytes`)
    tt.ok(
      process.memoryUsage().rss < 1024 * 1024 * 1024,
      `process RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`
    )
    tt.notOk(tc.get.closed, 'tunnel not closed (default clientOutputBytes not reached)')
    // The client reads again: the backend unblocks and everything arrives, in order, nothing lost.
    tc.get.socket.resume()
    await waitFor(
      () => sender.bytes > blockedAt || undefined,
      'the backend sender to resume after the client reads',
      10_000
    )
    sender.stopped = true
    await sender.done
    await waitFor(
      () => tc.get.frames().length >= sender.sent.length || undefined,
      `all ${sender.sent.length} frames after resuming`,
      20_000,
      20
    )
    const got = tc.get.frames()
    tt.ok(
      got.length === sender.sent.length && got.every((f, i) => f.raw.equals(sender.sent[i]!)),
      `${sender.sent.length} frames (${(sender.bytes / 1e6).toFixed(1)} MB) delivered intact after the stall`
    )
    tc.close()
  }
)

t.test(
  'check 23 (cap): with a small limits.clientOutputBytes the stalled tunnel is closed with TG_ERR_TUN_OUTPUT_OVERFLOW',
  async tt => {
    const gw2 = await startTestGateway(tt, [backend], { limits: { clientOutputBytes: 20_000 } })
    const before = await errorCount(gw2, 'TG_ERR_TUN_OUTPUT_OVERFLOW')
    const { tc, conn } = await playing(gw2.port)
    tc.get.socket.pause()
    const sender = new PacedSender(conn)
    await conn.waitClosed(15_000)
    sender.stopped = true
    await sender.done
    tt.equal(await errorCount(gw2, 'TG_ERR_TUN_OUTPUT_OVERFLOW'), before + 1, 'TG_ERR_TUN_OUTPUT_OVERFLOW counted')
    tt.equal(
      await metric(gw2, 'tunnelgate_tunnels_total', { outcome: 'client_slow' }),
      1,
      'tunnel closed with outcome client_slow'
    )
    tc.get.socket.resume()
    await tc.get.waitClosed(3000, 'stalled GET closed')
    await tc.post.waitClosed(3000, 'POST closed')
    await settled(gw2, [backend])
  }
)

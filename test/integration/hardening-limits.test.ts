/**
 * Issue 5 limits over real sockets against a scripted DSS-like backend: unpaired legs and tunnels
 * per client address and in total (other addresses untouched), `$` frame size, RTSP requests per
 * second per tunnel, cookie length, tunnel.requireSameClientIp, whole-frame dropping past a lag
 * (never part of a frame), and the stalled-client close. Each case ends with a leak check (fds,
 * timers, sockets, tunnels gauge, backend connections).
 */
import t from 'tap'
import { startTestGateway, errorCount, metric } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import {
  GetLeg,
  TunnelClient,
  b64,
  connect,
  destroyAllClients,
  frame,
  getLegFrom,
  getStatusLine,
  postLegFrom,
  rtspRequest
} from '../helpers/tunnel-client.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { randomBytes } from 'node:crypto'

/** Unique cookies (the shared newCookie() repeats within one millisecond). */
const newCookie = (): string => randomBytes(16).toString('base64url')
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'

t.teardown(() => { destroyAllClients() })

t.afterEach(() => { destroyAllClients() })

const getFrom = async (port: number, local: string, cookie = newCookie()): Promise<GetLeg> =>
  await getLegFrom(port, local, cookie)
const postFrom = postLegFrom
const statusOf = getStatusLine

t.test('unpaired legs per client address and in total; other addresses untouched', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { limits: { maxUnpairedLegsPerIp: 3, maxUnpairedLegs: 5 } })
  const before = await leakSnapshot(gw)

  const gets = [
    await getFrom(gw.port, '127.0.0.1'),
    await getFrom(gw.port, '127.0.0.1'),
    await getFrom(gw.port, '127.0.0.1')
  ]
  for (const g of gets) t.equal(await statusOf(g), 'HTTP/1.0 200 OK', 'unpaired GET within the per-address limit')
  t.equal(await metric(gw, 'tunnelgate_unpaired_legs'), 3, 'unpaired GETs are counted as unpaired legs')
  const fourth = await getFrom(gw.port, '127.0.0.1')
  t.match(await statusOf(fourth), /^HTTP\/1\.0 503 /, '4th unpaired GET from one address: 503')
  t.match(fourth.rawBeforeHead, /Retry-After: 5/, 'with Retry-After')
  const post = await postFrom(gw.port, '127.0.0.1', newCookie())
  await post.waitClosed(3000, 'an unpaired POST over the per-address limit closed')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_IP_LIMIT'), 2, 'TG_ERR_TUN_IP_LIMIT counted')
  t.equal(
    await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.maxUnpairedLegsPerIp' }),
    2,
    'limit hit counted by setting name'
  )

  // Another address is untouched by 127.0.0.1's limit, up to the total.
  const other = [await getFrom(gw.port, '127.0.0.2'), await getFrom(gw.port, '127.0.0.2')]
  for (const g of other) t.equal(await statusOf(g), 'HTTP/1.0 200 OK', 'another address still gets tunnels')
  const overTotal = await getFrom(gw.port, '127.0.0.3')
  t.match(await statusOf(overTotal), /^HTTP\/1\.0 503 /, 'the 6th unpaired leg in total: 503')
  t.equal(await errorCount(gw, 'TG_ERR_TUN_TOO_MANY'), 1, 'TG_ERR_TUN_TOO_MANY counted')
  t.equal(await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.maxUnpairedLegs' }), 1)

  // Pairing one GET frees a slot for its address.
  const paired = await postFrom(
    gw.port,
    '127.0.0.1',
    gets[0]!.cookie!,
    b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1))
  )
  await gets[0]!.response(1)
  t.equal(await metric(gw, 'tunnelgate_unpaired_legs'), 4, 'a paired GET is no longer unpaired')
  const again = await getFrom(gw.port, '127.0.0.1')
  t.equal(await statusOf(again), 'HTTP/1.0 200 OK', 'a slot freed by pairing is usable again')

  for (const l of [...gets, ...other, again, paired, fourth, overTotal]) l.destroy()
  await assertNoLeaks(gw, before, [backend])
  t.equal(await metric(gw, 'tunnelgate_unpaired_legs'), 0, 'unpaired gauge back to 0')
})

t.test('tunnels per client address (tunnel and plain RTSP), other addresses untouched', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { limits: { maxTunnelsPerIp: 2 } })
  const before = await leakSnapshot(gw)
  const a = await TunnelClient.open(gw.port, { cookie: newCookie() })
  const b = await TunnelClient.open(gw.port, { cookie: newCookie() })
  t.equal((await a.request('OPTIONS')).status, 200)
  t.equal((await b.request('OPTIONS')).status, 200)
  const third = await getFrom(gw.port, '127.0.0.1')
  t.match(await statusOf(third), /^HTTP\/1\.0 503 /, 'third tunnel from one address: HTTP 503')
  const rtsp = await connect(gw.port, '127.0.0.1', '127.0.0.1')
  const got: Buffer[] = []
  rtsp.on('data', (c: Buffer) => got.push(c))
  rtsp.write(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1))
  await waitFor(() => Buffer.concat(got).toString('latin1').includes('\r\n\r\n'), 'plain RTSP answer')
  t.match(Buffer.concat(got).toString('latin1'), /^RTSP\/1\.0 503 /, 'plain RTSP from the same address: RTSP 503')
  const fromOther = await getFrom(gw.port, '127.0.0.5')
  t.equal(await statusOf(fromOther), 'HTTP/1.0 200 OK', 'another address is not limited')
  t.equal(await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.maxTunnelsPerIp' }), 2)
  t.equal((await a.request('OPTIONS')).status, 200, 'existing tunnels untouched')
  a.close(); b.close(); third.destroy(); fromOther.destroy(); rtsp.destroy()
  await assertNoLeaks(gw, before, [backend])
})

t.test('$ frame size cap, RTSP request rate, cookie length', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], {
    limits: { clientFrameBytes: 104, rtspRequestsPerSecond: 4, rtspRequestBurst: 5 }
  })
  const before = await leakSnapshot(gw)
  const c = await TunnelClient.open(gw.port, { cookie: newCookie() })
  await c.play()
  const conn = await backend.waitConn()
  await c.post.send(Buffer.concat([frame(1, Buffer.alloc(200, 7)), frame(1, Buffer.alloc(100, 9))]))
  await conn.waitUnits(u => u.kind === 'frame', 1, 3000, 'the small frame')
  const frames = conn.frames()
  t.equal(frames.length, 1, 'only the frame within the cap reached the backend')
  t.equal(frames[0]!.payload.length, 100, 'the small frame, intact')
  t.equal(await errorCount(gw, 'TG_ERR_RTSP_FRAME_TOO_LARGE'), 1, 'oversized frame counted')

  // Burst of 5 within the bucket is spent partly by play() (3 requests); wait for a refill first.
  await new Promise(resolve => setTimeout(resolve, 1300))
  const burst: number[] = []
  let bytes = Buffer.alloc(0)
  for (let i = 0; i < 9; i++) {
    const r = c.build('OPTIONS')
    burst.push(r.cseq)
    bytes = Buffer.concat([bytes, r.bytes])
  }
  await c.post.send(bytes)
  const statuses: number[] = []
  for (const cseq of burst) statuses.push((await c.get.response(cseq)).status)
  t.equal(statuses.filter(s => s === 200).length, 5, 'the burst is answered by the backend')
  t.equal(statuses.filter(s => s === 503).length, 4, 'requests over the rate get RTSP 503')
  const limited = await c.get.response(burst[8]!)
  t.equal(getHeader(limited, 'Retry-After'), '1', '503 carries Retry-After')
  t.equal(await errorCount(gw, 'TG_ERR_RTSP_RATE_LIMITED'), 4)
  await new Promise(resolve => setTimeout(resolve, 600))
  t.equal((await c.request('OPTIONS')).status, 200, 'after a pause requests pass again')

  const short = await GetLeg.open(gw.port, { cookie: 'abc1234' })
  t.match(await statusOf(short), /^HTTP\/1\.0 400 /, 'a 7-character cookie is refused (400)')
  const ok8 = await GetLeg.open(gw.port, { cookie: 'abcd1234' })
  t.equal(await statusOf(ok8), 'HTTP/1.0 200 OK', 'an 8-character cookie is accepted')
  c.close(); short.destroy(); ok8.destroy()
  await assertNoLeaks(gw, before, [backend])
})

t.test('tunnel.requireSameClientIp: POST from another address refused (both orders); off by default', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const strict = await startTestGateway(t, [backend], { tunnel: { requireSameClientIp: true } })
  const before = await leakSnapshot(strict)
  const cookie = newCookie()
  const get = await getFrom(strict.port, '127.0.0.1', cookie)
  await get.readHead()
  const foreign = await postFrom(
    strict.port,
    '127.0.0.9',
    cookie,
    b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1))
  )
  await foreign.waitClosed(3000, 'the foreign POST closed')
  t.match(foreign.received.toString('latin1'), /^HTTP\/1\.0 403 /, 'foreign POST: HTTP 403')
  t.equal(backend.conns.length, 0, 'nothing from the foreign POST reached a backend')
  const own = await postFrom(strict.port, '127.0.0.1', cookie, b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 2)))
  t.equal((await get.response(2)).status, 200, 'the tunnel is untouched: its own POST works')
  // POST first from another address, then the GET.
  const cookie2 = newCookie()
  const early = await postFrom(strict.port, '127.0.0.9', cookie2, b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1)))
  await waitFor(() => strict.relay.pendingPostCount === 1 || undefined, 'the early POST held')
  const get2 = await getFrom(strict.port, '127.0.0.1', cookie2)
  await get2.readHead()
  await early.waitClosed(3000, 'the early foreign POST closed when its GET came')
  t.equal(await errorCount(strict, 'TG_ERR_TUN_CLIENT_MISMATCH'), 2)
  get.destroy(); own.destroy(); get2.destroy()
  await assertNoLeaks(strict, before, [backend])

  const lax = await startTestGateway(t, [backend])
  const cookie3 = newCookie()
  const get3 = await getFrom(lax.port, '127.0.0.1', cookie3)
  await get3.readHead()
  const post3 = await postFrom(lax.port, '127.0.0.9', cookie3, b64(rtspRequest('OPTIONS', 'rtsp://gw/live/cam1', 1)))
  t.equal((await get3.response(1)).status, 200, 'default (off): a POST from another address joins (proxy farms)')
  get3.destroy(); post3.destroy()
})

/** A backend that streams numbered 60000-byte `$` frames as fast as its socket takes them, after PLAY. */
function streamingBackend (stop: { now: boolean }): ReturnType<typeof dssScript> {
  return dssScript({
    before: (req, conn) => {
      if (req.method !== 'PLAY') return false
      conn.respond(req, 200, 'OK', [['Session', '7368154426419384412'], ['Range', 'npt=0.000-']])
      let seq = 0
      const pump = (): void => {
        while (!stop.now && !conn.socket.destroyed) {
          const payload = Buffer.alloc(60_000, seq & 0xff)
          payload.writeUInt32BE(seq++, 0)
          if (!conn.sendFrame(0, payload)) { conn.socket.once('drain', pump); return }
        }
      }
      setImmediate(pump)
      return true
    }
  })
}

t.test('lag: whole frames dropped and counted (never part of one); RTSP replies still delivered', async t => {
  const stop = { now: false }
  const backend = await ScriptedBackend.start(streamingBackend(stop))
  t.teardown(() => { stop.now = true; return backend.close() })
  const gw = await startTestGateway(t, [backend], {
    limits: { dropFramesAboveBytes: 256 * 1024, clientOutputBytes: 64 * 1024 * 1024 }
  })
  const before = await leakSnapshot(gw)
  const c = await TunnelClient.open(gw.port, { cookie: newCookie() })
  await c.play()
  c.get.socket.pause() // a stalled player
  const deadline = Date.now() + 15_000
  while (await metric(gw, 'tunnelgate_frames_dropped_total') < 20) {
    if (Date.now() > deadline) throw new Error('no frames dropped')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(await metric(gw, 'tunnelgate_frames_dropped_total') >= 20, 'frames dropped while the client lags')
  t.equal(await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.dropFramesAboveBytes' }) >= 1, true)
  const { bytes, cseq } = c.build('OPTIONS')
  await c.post.send(bytes)
  c.get.socket.resume()
  const res = await c.get.response(cseq, 10_000)
  t.equal(res.status, 200, 'an RTSP reply sent during the lag arrives whole')
  // Keep the backend streaming until frames sent after the lag have arrived: stopped at the reply,
  // it could end before the gateway's queue fell below the drop threshold again, and then nothing
  // after the dropped frames was ever sent (the gap below would have no far side).
  const atReply = c.get.frames().length
  await waitFor(() => c.get.frames().length > atReply + 10 || undefined, 'frames sent after the lag', 10_000)
  stop.now = true
  await waitFor(() => c.get.frames().length > 10 || undefined, 'frames at the client')
  let bad = 0
  let gaps = 0
  let last = -1
  for (const f of c.get.frames()) {
    const seq = f.payload.readUInt32BE(0)
    if (f.payload.length !== 60_000 || f.payload[100] !== (seq & 0xff) || f.payload[59_999] !== (seq & 0xff)) bad++
    if (last !== -1 && seq !== last + 1) gaps++
    last = seq
  }
  t.equal(bad, 0, 'every frame that reached the client is whole and intact')
  t.ok(gaps >= 1, 'frames are missing whole (sequence gaps), not cut')
  t.equal(c.get.units.filter(u => u.kind === 'error').length, 0, 'the client stream never desynchronised')
  c.close()
  await assertNoLeaks(gw, before, [backend])
})

t.test('lag without dropping: backend paused, a client that reads nothing for clientStallMs is closed', async t => {
  const stop = { now: false }
  const backend = await ScriptedBackend.start(streamingBackend(stop))
  t.teardown(() => { stop.now = true; return backend.close() })
  const gw = await startTestGateway(t, [backend], { limits: { clientStallMs: 800 } })
  const before = await leakSnapshot(gw)
  const c = await TunnelClient.open(gw.port, { cookie: newCookie() })
  await c.play()
  c.get.socket.pause()
  const conn = await backend.waitConn()
  await conn.waitClosed(10_000)
  t.equal(
    await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.clientStallMs' }),
    1,
    'stall limit hit counted'
  )
  t.equal(await errorCount(gw, 'TG_ERR_TUN_OUTPUT_OVERFLOW'), 1, 'closed as an output overflow')
  t.ok(conn.written < 64 * 1024 * 1024, `backpressure bounded what the backend could write (${conn.written} bytes)`)
  stop.now = true
  c.close()
  await assertNoLeaks(gw, before, [backend])
})

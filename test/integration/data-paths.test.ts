/**
 * Reference §6 checks 15–18 (data paths) over real sockets: what the client sends on the POST
 * and on the GET upstream reaches the backend intact and in order; backend `$` frames reach the
 * client byte-identical; the gateway never splices its own replies into a frame.
 */
import t from 'tap'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { ScriptedBackend, dssScript, type BackendConn } from '../helpers/scripted-backend.js'
import { settled, startTestGateway } from '../helpers/gateway-harness.js'
import {
  TunnelClient,
  b64,
  destroyAllClients,
  frame,
  patternBytes,
  rtspRequest,
  rtspResponse
} from '../helpers/tunnel-client.js'
import { pause, waitFor } from '../helpers/wait.js'

/** GET_PARAMETER with a `X-Frames: n` header: the backend answers with frames and the reply in one write. */
/** Raw bytes of any unit (error units have none). */
const rawOf = (u: { kind: string, raw?: Buffer } | undefined): Buffer => u?.raw ?? Buffer.alloc(0)

const backend = await ScriptedBackend.start(dssScript({
  before: (req, conn) => {
    const n = getHeader(req, 'X-Frames')
    if (req.method !== 'GET_PARAMETER' || n === undefined) return false
    const f = (i: number): Buffer => frame(0, patternBytes(1000 + i, 77 + i))
    const parts: Buffer[] = []
    for (let i = 0; i < Number(n); i++) parts.push(f(i))
    parts.push(rtspResponse(200, 'OK', [['CSeq', getHeader(req, 'CSeq')!], ['Session', '7368154426419384412']]))
    for (let i = 0; i < Number(n); i++) parts.push(f(100 + i))
    conn.send(Buffer.concat(parts))
    return true
  }
}))
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend])
t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]) })

async function playing (): Promise<{ tc: TunnelClient, conn: BackendConn, session: string }> {
  const tc = await TunnelClient.open(gw.port)
  const { session } = await tc.play()
  return { tc, conn: backend.conns.at(-1)!, session }
}

t.test(
  'check 15 + 30: requests, responses to server requests and $ frames from the POST reach the backend in order',
  async tt => {
    const { tc, conn, session } = await playing()
    // Server-originated requests travel to the client over the GET (URL mapped to the public one).
    conn.send(rtspRequest('OPTIONS', `rtsp://${backend.authority}/live/cam1`, 500, [['Session', session]]))
    conn.send(rtspRequest('GET_PARAMETER', `rtsp://${backend.authority}/live/cam1`, 501, [['Session', session]]))
    const serverReqs = await waitFor(() => {
      const r = tc.get.requests()
      return r.length >= 2 ? r : undefined
    }, 'server requests on the GET')
    tt.same(
      serverReqs.map(r => [r.method, r.uri, getHeader(r, 'CSeq')]),
      [
        ['OPTIONS', tc.url, '500'],
        ['GET_PARAMETER', tc.url, '501']
      ],
      'server requests reach the client, URLs mapped'
    )
    // FFmpeg-style answers (200 for OPTIONS, 501 otherwise), a $ RTCP frame and a request: one POST stream.
    const ok = rtspResponse(200, 'OK', [
      ['CSeq', '500'],
      ['Session', session]
    ])
    const notImpl = rtspResponse(501, 'Not Implemented', [['CSeq', '501']])
    const rtcp = frame(1, patternBytes(52, 9))
    const { bytes: req, cseq } = tc.build('GET_PARAMETER', tc.url, [['Session', session]])
    await tc.post.sendRaw(b64(ok) + b64(notImpl) + b64(rtcp) + b64(req))
    const got = await conn.waitUnits(
      u => u.kind !== 'request' || getHeader(u, 'CSeq') === String(cseq),
      4,
      3000,
      'four units at the backend'
    )
    const tail = conn.units.slice(conn.units.indexOf(got[0]!))
    tt.same(
      tail.slice(0, 4).map(u => u.kind),
      ['response', 'response', 'frame', 'request'],
      'arrival order kept'
    )
    tt.ok(tail[0]!.kind === 'response' && tail[0]!.raw.equals(ok), '200 reply to the server OPTIONS byte-identical')
    tt.ok(tail[1]!.kind === 'response' && tail[1]!.raw.equals(notImpl), '501 reply byte-identical')
    tt.ok(tail[2]!.kind === 'frame' && tail[2]!.raw.equals(rtcp), '$ frame byte-identical')
    tt.equal((await tc.get.response(cseq)).status, 200, 'request after them answered')
    tc.close()
  }
)

t.test(
  'check 16: raw $ RTCP on the GET upstream is forwarded, never parsed as HTTP; GET EOF closes the tunnel',
  async tt => {
    const { tc, conn } = await playing()
    const rr = frame(1, Buffer.from('\x81\xc9\x00\x07GET / HTTP/1.0\r\nx-sessioncookie: zz\r\n\r\n', 'latin1'))
    const big = frame(3, patternBytes(1400, 5))
    await tc.get.write(rr)
    await tc.get.write(big.subarray(0, 3))
    await pause(2)
    await tc.get.write(big.subarray(3))
    const frames = await conn.waitUnits(u => u.kind === 'frame', 2, 3000, 'GET-upstream frames at the backend')
    tt.ok(rawOf(frames[0]).equals(rr), 'RTCP frame (with HTTP-looking payload) forwarded byte-identical')
    tt.ok(rawOf(frames[1]).equals(big), 'frame split across segments forwarded whole')
    tt.equal((await tc.request('OPTIONS')).status, 200, 'tunnel unaffected')
    // EOF on the GET upstream (half-close) ends the tunnel.
    tc.get.end()
    await conn.waitRequest('TEARDOWN')
    await tc.post.waitClosed(2000, 'POST closed after GET EOF')
    await tc.get.waitClosed(2000, 'GET closed')
    tt.pass('GET upstream EOF closed the tunnel (TEARDOWN sent, legs closed)')
  }
)

t.test('check 16 (drop): with tunnel.getUpstream = drop, GET-upstream frames are discarded', async tt => {
  const gw2 = await startTestGateway(tt, [backend], { tunnel: { getUpstream: 'drop' } })
  const tc = await TunnelClient.open(gw2.port)
  await tc.play()
  const conn = backend.conns.at(-1)!
  await tc.get.write(frame(1, patternBytes(60, 3)))
  tt.equal((await tc.request('OPTIONS')).status, 200, 'request after the dropped frame answered')
  tt.equal(conn.frames().length, 0, 'no frame reached the backend')
  tc.close()
  await settled(gw2, [backend])
})

t.test(
  'check 17: backend $ frames reach the client byte-identical (65535 bytes, split reads, next to responses)',
  async tt => {
    const { tc, conn, session } = await playing()
    const before = tc.get.frames().length
    const sent: Buffer[] = []
    // Largest frame, several back to back in one write.
    const max1 = frame(0, patternBytes(65535, 1))
    const max2 = frame(1, patternBytes(65535, 2))
    sent.push(max1, max2)
    conn.send(Buffer.concat([max1, max2]))
    // A frame split across backend writes, cut inside its 4-byte header and inside the payload.
    const split = frame(0, patternBytes(30_000, 3))
    sent.push(split)
    for (const [a, b] of [
      [0, 1],
      [1, 3],
      [3, 10_000],
      [10_000, split.length]
    ] as const) {
      conn.send(split.subarray(a, b))
      await pause(3)
    }
    await waitFor(() => tc.get.frames().length >= before + sent.length, 'large and split frames at the client')
    const got = tc.get.frames().slice(before)
    tt.equal(got.length, sent.length, 'frame count')
    tt.ok(
      got.every((f, i) => f.raw.equals(sent[i]!)),
      'frames byte-identical (65535-byte payloads, split frame)'
    )
    tt.equal(got[0]!.payload.length, 65535, '65535-byte payload intact')
    // Frames and a response back to back in one backend write.
    const { bytes, cseq } = tc.build('GET_PARAMETER', tc.url, [
      ['Session', session],
      ['X-Frames', '3']
    ])
    await tc.post.send(bytes)
    const res = await tc.get.response(cseq)
    tt.equal(res.status, 200, 'response between frames delivered')
    await waitFor(() => tc.get.frames().length >= before + sent.length + 6, 'frames around the response')
    const idx = tc.get.units.indexOf(res)
    const around = tc.get.units.slice(idx - 3, idx + 4)
    tt.same(
      around.map(u => u.kind),
      ['frame', 'frame', 'frame', 'response', 'frame', 'frame', 'frame'],
      'order kept: 3 frames, response, 3 frames'
    )
    const expect = (i: number): Buffer => frame(0, patternBytes(1000 + i, 77 + i))
    tt.ok(
      [0, 1, 2].every(i => rawOf(around[i]).equals(expect(i))) &&
        [0, 1, 2].every(i => rawOf(around[4 + i]).equals(expect(100 + i))),
      'frames next to the response byte-identical'
    )
    tt.equal(tc.get.units.filter(u => u.kind === 'error').length, 0, 'client stream never desynchronised')
    tc.close()
  }
)

t.test('check 18: gateway-originated replies are never inserted inside a $ frame or message', async tt => {
  const { tc, conn, session } = await playing()
  // A frame half-sent by the backend, then the gateway answers a request itself (551).
  const big = frame(0, patternBytes(65535, 11))
  conn.send(big.subarray(0, 30_000))
  await pause(5)
  const { bytes, cseq } = tc.build('OPTIONS', tc.url, [['Proxy-Require', 'x-foo']])
  await tc.post.send(bytes)
  const r551 = await tc.get.response(cseq)
  tt.equal(r551.status, 551, 'gateway answered 551 while a frame was half-sent')
  conn.send(big.subarray(30_000))
  await waitFor(() => tc.get.frames().find(f => f.raw.equals(big)), 'the completed frame')
  // Stress: the backend streams frames in odd-sized writes while the gateway answers requests itself.
  const frames: Buffer[] = []
  for (let i = 0; i < 120; i++) frames.push(frame(i % 2, patternBytes(200 + ((i * 997) % 4000), 1000 + i)))
  const stream = Buffer.concat(frames)
  const before = tc.get.frames().length
  const gatewayAnswered: number[] = []
  let off = 0
  let k = 0
  while (off < stream.length) {
    const n = 1 + ((k * 7919) % 9000)
    conn.send(stream.subarray(off, off + n))
    off += n
    if (k % 10 === 0) {
      const m =
        k % 20 === 0
          ? tc.build('SETUP', `${tc.url}/trackID=2`, [
            ['Transport', 'RTP/AVP;unicast;client_port=5000-5001'],
            ['Session', session]
          ])
          : tc.build('OPTIONS', tc.url, [['Proxy-Require', 'x-bar']])
      gatewayAnswered.push(m.cseq)
      await tc.post.send(m.bytes)
    }
    k++
    await pause(1)
  }
  await waitFor(() => tc.get.frames().length >= before + frames.length, 'all streamed frames', 5000)
  for (const c of gatewayAnswered) {
    tt.ok([461, 551].includes((await tc.get.response(c)).status), `gateway reply CSeq ${c} intact`)
  }
  const got = tc.get.frames().slice(before)
  tt.ok(
    got.length === frames.length && got.every((f, i) => f.raw.equals(frames[i]!)),
    `${frames.length} frames byte-identical around ${gatewayAnswered.length} gateway replies`
  )
  tt.equal(tc.get.units.filter(u => u.kind === 'error').length, 0, 'client stream parsed without a single error')
  tc.close()
})

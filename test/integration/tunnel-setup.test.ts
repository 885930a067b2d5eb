/**
 * Reference §6 checks 1–9 (tunnel setup) over real sockets: a raw tunnel client against the
 * gateway in front of a scripted DSS-like backend.
 */
import t, { type Test } from 'tap'
import { getHeader, type Header } from '../../src/tunnel/codec/rtsp-message.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { errorCount, metric, settled, startTestGateway } from '../helpers/gateway-harness.js'
import {
  GetLeg,
  PostLeg,
  TunnelClient,
  b64,
  connect,
  destroyAllClients,
  frame,
  newCookie,
  patternBytes,
  rtspRequest,
  writeAsync
} from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'

const PAIRING_MS = 600

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend], { tunnel: { pairingTimeoutMs: PAIRING_MS } })

/** The exact GET reply every variant must get (check 1's header rules). */
function checkReplyHead (tt: Test, head: { statusLine: string, headers: Header[] }, name: string): void {
  tt.equal(head.statusLine, 'HTTP/1.0 200 OK', `${name}: status line`)
  const h = (n: string): string | undefined => head.headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1]
  tt.equal(h('Content-Type'), 'application/x-rtsp-tunnelled', `${name}: Content-Type`)
  tt.equal(h('Cache-Control'), 'no-store', `${name}: Cache-Control`)
  tt.equal(h('Pragma'), 'no-cache', `${name}: Pragma`)
  tt.equal(h('Connection'), 'close', `${name}: Connection`)
  for (const banned of [
    'Content-Length', 'Transfer-Encoding', 'x-server-ip-address'
  ]) tt.equal(h(banned), undefined, `${name}: no ${banned}`)
}

/** OPTIONS through the tunnel and back: proves both legs are paired and the GET is open. */
async function roundTrip (
  tc: TunnelClient | { get: GetLeg, post: PostLeg },
  cseq: number,
  url = 'rtsp://gw.example.net/live/cam1'
): Promise<void> {
  await tc.post.send(rtspRequest('OPTIONS', url, cseq, [['User-Agent', 'tg-test']]))
  const res = await tc.get.response(cseq)
  if (res.status !== 200) throw new Error(`OPTIONS ${cseq} answered ${res.status}`)
}

t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]) })

t.test('check 1: immediate exact HTTP/1.0 reply, before any backend connection; GET stays open', async tt => {
  const connsBefore = backend.conns.length
  const cookie = newCookie(22)
  const t0 = performance.now()
  const get = await GetLeg.open(gw.port, { cookie })
  const head = await get.readHead()
  const ms = performance.now() - t0
  tt.ok(ms < 100, `reply head within 100 ms (${ms.toFixed(1)} ms)`)
  tt.equal(backend.conns.length, connsBefore, 'no backend connection opened for the GET')
  checkReplyHead(tt, head, 'plain GET')
  tt.equal(
    head.text,
    'HTTP/1.0 200 OK\r\nServer: tunnelgate\r\nConnection: close\r\nDate: Thu, 19 Aug 1982 18:30:00 GMT\r\n' +
    'Cache-Control: no-store\r\nPragma: no-cache\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n',
    'DSS-template head, byte for byte'
  )
  tt.equal(get.bodyLength, 0, 'nothing after the head yet')
  tt.notOk(get.closed, 'GET open after the reply')
  const post = await PostLeg.open(gw.port, { cookie })
  await roundTrip({ get, post }, 1)
  tt.notOk(get.closed, 'GET still open after a round trip')
  tt.equal(post.received.length, 0, 'the POST is never answered')
  tt.equal(await metric(gw, 'tunnelgate_tunnels_active'), 1, 'one tunnel active')
  get.destroy(); post.destroy()
})

t.test('check 2: HTTP/1.1 GETs from FFmpeg, live555 and gortsplib get the same reply', async tt => {
  const variants: Array<{ name: string, version: 'HTTP/1.0' | 'HTTP/1.1', headers: Header[] }> = [
    {
      name: 'ffmpeg',
      version: 'HTTP/1.1',
      headers: [
        ['Range', 'bytes=0-'],
        ['Icy-MetaData', '1'],
        ['Connection', 'close'],
        ['Host', 'gw.example.net']
      ]
    },
    { name: 'live555', version: 'HTTP/1.0', headers: [['CSeq', '1']] },
    {
      name: 'gortsplib',
      version: 'HTTP/1.1',
      headers: [
        ['Content-Length', '30000'],
        ['Host', 'gw.example.net']
      ]
    }
  ]
  let first: string | null = null
  for (const v of variants) {
    const cookie = newCookie(v.name === 'gortsplib' ? 32 : 23)
    const get = await GetLeg.open(gw.port, { cookie, version: v.version, headers: v.headers })
    const head = await get.readHead()
    checkReplyHead(tt, head, v.name)
    if (first === null) first = head.text
    else tt.equal(head.text, first, `${v.name}: identical reply head`)
    const post = await PostLeg.open(gw.port, { cookie, version: v.version })
    await roundTrip({ get, post }, 7)
    tt.notOk(get.closed, `${v.name}: GET open`)
    get.destroy(); post.destroy()
    await settled(gw, [backend])
  }
})

t.test('check 3: cookie header name case-insensitive, value exact, 16–64 chars with +/=', async tt => {
  const cases: Array<{ getName: string, postName: string, cookie: string }> = [
    { getName: 'X-Sessioncookie', postName: 'x-sessioncookie', cookie: '0123456789abcdef' },
    { getName: 'X-SessionCookie', postName: 'X-SESSIONCOOKIE', cookie: 'Ab+/=Cd+/=Ef+/=Gh+/=Ij' },
    { getName: 'x-sessioncookie', postName: 'X-Sessioncookie', cookie: 'q'.repeat(20) + '+/=' + 'Z'.repeat(41) }
  ]
  let cseq = 10
  for (const c of cases) {
    const get = await GetLeg.open(gw.port, { cookie: c.cookie, cookieHeader: c.getName })
    checkReplyHead(tt, await get.readHead(), `${c.getName} / ${c.cookie.length} chars`)
    const post = await PostLeg.open(gw.port, { cookie: c.cookie, cookieHeader: c.postName })
    await roundTrip({ get, post }, ++cseq)
    tt.pass(`paired: GET '${c.getName}', POST '${c.postName}', cookie of ${c.cookie.length} chars`)
    get.destroy(); post.destroy()
    await settled(gw, [backend])
  }
  // The value is compared exactly: a POST whose cookie differs only in case does not pair.
  const conns = backend.conns.length
  const get = await GetLeg.open(gw.port, { cookie: 'CaseSensitiveCookie01' })
  await get.readHead()
  const post = await PostLeg.open(
    gw.port,
    { cookie: 'casesensitivecookie01' },
    b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 99))
  )
  await get.waitClosed(PAIRING_MS + 2000, 'unpaired GET dropped')
  await post.waitClosed(PAIRING_MS + 2000, 'unpaired POST dropped')
  tt.equal(get.responses().length, 0, 'no reply through a case-mismatched pair')
  tt.equal(backend.conns.length, conns, 'nothing reached the backend')
})

t.test('check 4: POST before GET binds; lone GET / lone POST dropped after the pairing window', async tt => {
  // Gap 0: POST (with its first request) and GET written back to back.
  {
    const cookie = newCookie(23)
    const post = await PostLeg.open(
      gw.port,
      { cookie },
      b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 1))
    )
    const get = await GetLeg.open(gw.port, { cookie })
    checkReplyHead(tt, await get.readHead(), 'GET after POST (gap 0)')
    tt.equal((await get.response(1)).status, 200, 'request sent before the GET existed is answered')
    await roundTrip({ get, post }, 2)
    get.destroy(); post.destroy()
    await settled(gw, [backend])
  }
  // A gap: the POST waits (counted as unpaired) until the GET arrives.
  {
    const cookie = newCookie(23)
    const post = await PostLeg.open(
      gw.port,
      { cookie },
      b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 1))
    )
    const unpaired = await waitFor(() => gw.relay.pendingPostCount === 1 || undefined, 'the POST to be held')
    tt.ok(unpaired, 'POST held while waiting for its GET')
    tt.equal(await metric(gw, 'tunnelgate_unpaired_legs'), 1, 'unpaired gauge = 1')
    await new Promise(resolve => setTimeout(resolve, PAIRING_MS / 2))
    const get = await GetLeg.open(gw.port, { cookie })
    await get.readHead()
    tt.equal((await get.response(1)).status, 200, `POST held ${PAIRING_MS / 2} ms binds to the late GET`)
    tt.equal(await metric(gw, 'tunnelgate_unpaired_legs'), 0, 'unpaired gauge back to 0')
    get.destroy(); post.destroy()
    await settled(gw, [backend])
  }
  // Lone GET.
  {
    const before = await errorCount(gw, 'TG_ERR_TUN_PAIRING_TIMEOUT')
    const get = await GetLeg.open(gw.port, { cookie: newCookie() })
    await get.readHead()
    const t0 = Date.now()
    await get.waitClosed(PAIRING_MS + 2000, 'lone GET dropped')
    const waited = get.closedAt - t0
    tt.ok(waited >= PAIRING_MS - 100, `lone GET kept for the pairing window (${waited} ms)`)
    tt.equal(await errorCount(gw, 'TG_ERR_TUN_PAIRING_TIMEOUT'), before + 1, 'pairing timeout counted')
    await settled(gw, [backend])
  }
  // Lone POST.
  {
    const post = await PostLeg.open(
      gw.port,
      { cookie: newCookie() },
      b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 1))
    )
    const t0 = Date.now()
    await post.waitClosed(PAIRING_MS + 2000, 'lone POST dropped')
    tt.ok(post.closedAt - t0 >= PAIRING_MS - 100, `lone POST kept for the pairing window (${post.closedAt - t0} ms)`)
    tt.equal(post.received.length, 0, 'nothing written to the lone POST')
    tt.equal(gw.relay.pendingPostCount, 0, 'no held POST left')
  }
})

t.test(
  'check 5: unknown-cookie POST, cookie-less GET and a second GET are refused; the live tunnel is untouched',
  async tt => {
    const tc = await TunnelClient.open(gw.port)
    await roundTrip(tc, 1)
    // POST for an unknown cookie: dropped after the window.
    const stray = await PostLeg.open(gw.port, { cookie: newCookie() }, b64(rtspRequest('OPTIONS', tc.url, 50)))
    await stray.waitClosed(PAIRING_MS + 2000, 'unknown-cookie POST dropped')
    // GET without a cookie: HTTP 400.
    const bare = await GetLeg.open(gw.port, { cookie: null })
    await bare.waitClosed(2000, 'cookie-less GET closed')
    tt.match(bare.rawBeforeHead, /^HTTP\/1\.0 400 /, 'cookie-less tunnel GET gets HTTP 400')
    // A second GET with the live cookie: closed, the first GET keeps working.
    const before = await errorCount(gw, 'TG_ERR_TUN_DUPLICATE_GET')
    const dup = await GetLeg.open(gw.port, { cookie: tc.cookie })
    await dup.waitClosed(2000, 'duplicate GET closed')
    tt.equal(dup.head, null, 'duplicate GET gets no tunnel reply')
    tt.equal(await errorCount(gw, 'TG_ERR_TUN_DUPLICATE_GET'), before + 1, 'duplicate GET counted')
    await roundTrip(tc, 2)
    tt.notOk(tc.get.closed, 'original GET still open')
    tt.equal(tc.get.responses().filter(r => getHeader(r, 'CSeq') === '50').length, 0, 'the stray POST reached nothing')
    tc.close()
  }
)

t.test('check 6: GET then POST of one cookie on the same TCP connection is refused cleanly', async tt => {
  const other = await TunnelClient.open(gw.port)
  await roundTrip(other, 1)
  const before = await errorCount(gw, 'TG_ERR_TUN_SAME_CONNECTION')
  const cookie = newCookie()
  const s = await connect(gw.port)
  const leg = new GetLeg(s, cookie)
  await writeAsync(
    s,
    `GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`
  )
  await leg.readHead()
  await writeAsync(
    s,
    `POST /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${
      cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n` +
      b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 1))
  )
  await leg.waitClosed(2000, 'the connection carrying GET and POST to be closed')
  tt.equal(await errorCount(gw, 'TG_ERR_TUN_SAME_CONNECTION'), before + 1, 'counted as TG_ERR_TUN_SAME_CONNECTION')
  tt.equal(leg.responses().length, 0, 'the base64 after the POST head was not executed')
  await roundTrip(other, 2)
  tt.pass('another tunnel is unaffected')
  other.close()
})

t.test('check 7: base64 in the same TCP segment as the POST head is processed', async tt => {
  const cookie = newCookie()
  const get = await GetLeg.open(gw.port, { cookie })
  await get.readHead()
  const body =
    b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 1)) +
    b64(rtspRequest('DESCRIBE', 'rtsp://gw.example.net/live/cam1', 2, [['Accept', 'application/sdp']]))
  const post = await PostLeg.open(gw.port, { cookie }, body)
  tt.equal((await get.response(1)).status, 200, 'OPTIONS in the head segment answered')
  tt.equal((await get.response(2)).status, 200, 'DESCRIBE in the head segment answered')
  get.destroy(); post.destroy()
})

t.test('check 8: POST Content-Length is ignored (> 32767 and > 1 MB of body keep decoding)', async tt => {
  const tc = await TunnelClient.open(gw.port)
  const { session } = await tc.play()
  const conn = backend.conns.at(-1)!
  const sent: Buffer[] = []
  let bodyBytes = 0
  for (let i = 0; i < 24; i++) {
    const f = frame(1, patternBytes(60_000, i + 1))
    sent.push(f)
    const enc = b64(f)
    bodyBytes += enc.length
    await tc.post.sendRaw(enc)
    if (i % 6 === 5) {
      const res = await tc.request('GET_PARAMETER', tc.url, [['Session', session]])
      tt.equal(res.status, 200, `keepalive after ${bodyBytes} body bytes`)
    }
  }
  tt.ok(bodyBytes > 1024 * 1024, `POST body ${bodyBytes} bytes > 1 MB with Content-Length: 32767`)
  const frames = await conn.waitUnits(u => u.kind === 'frame', sent.length, 10_000, 'all frames at the backend')
  tt.equal(frames.length, sent.length, 'every frame reached the backend')
  tt.ok(frames.every((f, i) => f.kind === 'frame' && f.raw.equals(sent[i]!)), 'frames byte-identical and in order')
  tc.close()
})

t.test('check 9: chunked POST is de-chunked; Expect: 100-continue does not stall it', async tt => {
  const cookie = newCookie()
  const get = await GetLeg.open(gw.port, { cookie })
  await get.readHead()
  const s = await connect(gw.port)
  const post = new PostLeg(s, cookie)
  await writeAsync(
    s,
    `POST /live/cam1 HTTP/1.1\r\nHost: gw.example.net\r\nx-sessioncookie: ${
      cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n`
  )
  // Do not wait for "100 Continue" (clients must not block on the POST); send the body at once.
  const body = Buffer.from(
    b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 1)) +
      b64(rtspRequest('OPTIONS', 'rtsp://gw.example.net/live/cam1', 2, [['User-Agent', 'x']])),
    'latin1'
  )
  const sizes = [5, 1, 17, 64, 3]
  let off = 0
  let i = 0
  while (off < body.length) {
    const n = Math.min(sizes[i++ % sizes.length]!, body.length - off)
    const chunk = Buffer.concat([
      Buffer.from(`${n.toString(16)};ext=1\r\n`),
      body.subarray(off, off + n),
      Buffer.from('\r\n')
    ])
    // Split each chunk's framing across two writes (inside the size line or the data).
    const cut = Math.min(2, chunk.length - 1)
    await writeAsync(s, chunk.subarray(0, cut))
    await writeAsync(s, chunk.subarray(cut))
    off += n
  }
  tt.equal((await get.response(1)).status, 200, 'first request in the chunked body answered')
  tt.equal((await get.response(2)).status, 200, 'second request in the chunked body answered')
  const reply = post.received.toString('latin1')
  tt.ok(
    reply === '' || reply === 'HTTP/1.1 100 Continue\r\n\r\n',
    `POST got at most an interim 100 (${JSON.stringify(reply)})`
  )
  get.destroy(); post.destroy()
})

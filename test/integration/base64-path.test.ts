/**
 * Reference §6 checks 10–14 end to end: base64 POST bodies cut and decorated the ways real
 * clients and proxies do, sent over a real POST socket; what the backend receives must equal
 * what an unsplit, clean body produces.
 */
import t from 'tap'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { ScriptedBackend, dssScript, type BackendConn } from '../helpers/scripted-backend.js'
import { errorCount, settled, startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, b64, destroyAllClients, rtspRequest } from '../helpers/tunnel-client.js'

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
// Check 10 pipelines ~320 requests on one tunnel within a second or two: no request-rate limit here.
const gw = await startTestGateway(t, [backend], { limits: { rtspRequestsPerSecond: 0 } })
t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]) })

const PUBLIC = 'rtsp://gw.example.net/live/cam1'
const backendUrl = (): string => `rtsp://${backend.authority}/live/cam1`

/** An OPTIONS whose length mod 3 is `mod` (so its base64 ends in '==', '=' or nothing). */
function optionsOf (cseq: number, mod: 0 | 1 | 2, uri = PUBLIC): Buffer {
  for (let pad = 0; pad < 3; pad++) {
    const m = rtspRequest('OPTIONS', uri, cseq, [['User-Agent', `tg-test${'x'.repeat(pad)}`]])
    if (m.length % 3 === mod) return m
  }
  throw new Error('unreachable')
}
/** The same message as the backend must receive it (Request-URI mapped to the backend). */
function expectedAtBackend (cseq: number, mod: 0 | 1 | 2): Buffer {
  const pub = optionsOf(cseq, mod)
  return Buffer.from(pub.toString('latin1').replace(PUBLIC, backendUrl()), 'latin1')
}

/** Raw bytes of the requests with these CSeqs at the backend, once all have arrived. */
async function receivedRaw (conn: BackendConn, cseqs: number[], timeoutMs = 3000): Promise<Buffer[]> {
  const want = new Set(cseqs.map(String))
  const units = await conn.waitUnits(
    u => u.kind === 'request' && want.has(getHeader(u, 'CSeq') ?? ''),
    cseqs.length,
    timeoutMs,
    `requests ${cseqs.join(',')} at the backend`
  )
  return cseqs.map(c => {
    const u = units.find(x => x.kind === 'request' && getHeader(x, 'CSeq') === String(c))
    return u !== undefined && u.kind === 'request' ? u.raw : Buffer.alloc(0)
  })
}

async function openTunnel (): Promise<{ tc: TunnelClient, conn: BackendConn }> {
  const tc = await TunnelClient.open(gw.port)
  const res = await tc.request('OPTIONS')
  if (res.status !== 200) throw new Error('tunnel not working')
  return { tc, conn: backend.conns.at(-1)! }
}

t.test('check 10: a body split at every byte boundary decodes like the unsplit body', async tt => {
  const { tc, conn } = await openTunnel()
  let cseq = 100
  let bad = 0
  let cases = 0
  // Two separately padded messages: the first ends in '==', so the cuts include "between the = chars".
  const probe = b64(optionsOf(1, 1)) + b64(optionsOf(2, 2))
  tt.match(probe, /==[A-Za-z0-9+/]+=$/, 'body holds "==" mid-stream and "=" at the end')
  for (let k = 1; k < probe.length; k++) {
    const a = cseq++
    const b = cseq++
    const body = b64(optionsOf(a, 1)) + b64(optionsOf(b, 2))
    await tc.post.sendSplit(body, [k], 2)
    const [ra, rb] = await receivedRaw(conn, [a, b])
    cases++
    if (!ra!.equals(expectedAtBackend(a, 1)) || !rb!.equals(expectedAtBackend(b, 2))) {
      bad++
      if (bad < 3) tt.fail(`split at ${k} decoded differently`)
    }
  }
  tt.equal(bad, 0, `all ${cases} two-segment splits decode identically`)
  // Three-way splits inside one quantum (every offset pair in the first 12 symbols).
  let bad3 = 0
  for (let i = 1; i < 12; i++) {
    const a = cseq++
    const body = b64(optionsOf(a, 2))
    await tc.post.sendSplit(body, [i, i + 1], 1)
    const [ra] = await receivedRaw(conn, [a])
    if (!ra!.equals(expectedAtBackend(a, 2))) bad3++
  }
  tt.equal(bad3, 0, 'one-symbol segments inside a quantum decode identically')
  tc.close()
})

t.test('check 11: separately padded messages decode to their concatenation', async tt => {
  const { tc, conn } = await openTunnel()
  const body = b64(optionsOf(11, 1)) + b64(optionsOf(12, 2)) + b64(optionsOf(13, 0)) + b64(optionsOf(14, 1))
  tt.equal(body.split('=').filter(Boolean).length >= 3, true, 'padding appears mid-stream')
  await tc.post.sendRaw(body)
  const got = await receivedRaw(conn, [11, 12, 13, 14])
  tt.same(
    got.map(b => b.toString('latin1')),
    [expectedAtBackend(11, 1), expectedAtBackend(12, 2), expectedAtBackend(13, 0), expectedAtBackend(14, 1)].map(b =>
      b.toString('latin1')
    ),
    'all four messages intact and in order'
  )
  for (const c of [11, 12, 13, 14]) tt.equal((await tc.get.response(c)).status, 200, `CSeq ${c} answered`)
  tc.close()
})

t.test('check 12: one continuous base64 stream for several messages', async tt => {
  const { tc, conn } = await openTunnel()
  const plain = Buffer.concat([optionsOf(21, 1), optionsOf(22, 2), optionsOf(23, 1)])
  tt.not(optionsOf(21, 1).length % 3, 0, 'message boundaries fall mid-quantum')
  await tc.post.sendSplit(b64(plain), [7, 50, 51, 133], 2)
  const got = await receivedRaw(conn, [21, 22, 23])
  tt.ok(
    got[0]!.equals(expectedAtBackend(21, 1)) &&
      got[1]!.equals(expectedAtBackend(22, 2)) &&
      got[2]!.equals(expectedAtBackend(23, 1)),
    'three messages from one unpadded stream, identical'
  )
  tc.close()
})

t.test('check 13: CR/LF/SP/TAB (76-col MIME lines) and NUL bytes are ignored', async tt => {
  const { tc, conn } = await openTunnel()
  // MIME style: one stream broken into 76-column CRLF lines.
  const mime = b64(Buffer.concat([optionsOf(31, 1), optionsOf(32, 2)])).replace(/(.{76})/g, '$1\r\n')
  tt.match(mime, /\r\n/, 'line breaks present')
  await tc.post.sendRaw(mime)
  // GStreamer 1.16–1.18: a NUL after every separately encoded message.
  await tc.post.sendRaw(Buffer.from(b64(optionsOf(33, 1)) + '\0' + b64(optionsOf(34, 0)) + '\0', 'latin1'))
  // Whitespace and NUL inside quanta, split across segments.
  const messy = b64(optionsOf(35, 2)).replace(/(.)(.)(.)/g, '$1 $2\t$3').replace(/(.{10})/g, '$1\0\n')
  await tc.post.sendSplit(messy, [3, 4, 40], 2)
  const got = await receivedRaw(conn, [31, 32, 33, 34, 35])
  const want = [
    expectedAtBackend(31, 1),
    expectedAtBackend(32, 2),
    expectedAtBackend(33, 1),
    expectedAtBackend(34, 0),
    expectedAtBackend(35, 2)
  ]
  tt.ok(got.every((g, i) => g.equals(want[i]!)), 'all five messages identical despite CR/LF/SP/TAB/NUL')
  tc.close()
})

t.test('check 14: other garbage is counted and never desynchronises later messages', async tt => {
  const { tc, conn } = await openTunnel()
  const before = await errorCount(gw, 'TG_ERR_B64_GARBAGE')
  // Garbage between separately padded messages: skipped.
  await tc.post.sendRaw(b64(optionsOf(41, 1)) + '!*~.' + b64(optionsOf(42, 2)) + '\u00ff' + b64(optionsOf(43, 0)))
  const got = await receivedRaw(conn, [41, 42, 43])
  tt.ok(
    got[0]!.equals(expectedAtBackend(41, 1)) &&
      got[1]!.equals(expectedAtBackend(42, 2)) &&
      got[2]!.equals(expectedAtBackend(43, 0)),
    'messages around the garbage intact'
  )
  const after = await errorCount(gw, 'TG_ERR_B64_GARBAGE')
  tt.ok(after >= before + 4, `garbage counted (${after - before})`)
  // Garbage inside a message's quanta: that message is skipped or answered 400, the next ones work.
  const m = b64(optionsOf(44, 1))
  const corrupted = m.slice(0, 21) + '#' + m.slice(21)
  await tc.post.sendRaw(corrupted + b64(optionsOf(45, 2)) + b64(optionsOf(46, 1)))
  const [r45, r46] = await receivedRaw(conn, [45, 46])
  tt.ok(r45!.equals(expectedAtBackend(45, 2)), 'message after a corrupted one reaches the backend intact')
  tt.ok(r46!.equals(expectedAtBackend(46, 1)), 'and so does the one after it')
  tt.equal((await tc.get.response(45)).status, 200, 'CSeq 45 answered 200')
  const r44 = tc.get.responses().find(r => getHeader(r, 'CSeq') === '44')
  tt.ok(
    r44 === undefined || r44.status === 400 || r44.status === 200,
    `the corrupted message was skipped, answered 400 or decoded (${r44?.status ?? 'none'})`
  )
  // The tunnel keeps working.
  tt.equal((await tc.request('OPTIONS')).status, 200, 'tunnel still in sync')
  tc.close()
})

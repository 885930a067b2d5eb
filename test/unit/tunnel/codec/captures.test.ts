/**
 * Real client/server tunnel captures (test/fixtures/captures, see README there) replayed
 * through the pure codecs: HTTP heads, POST base64, GET-leg RTSP + '$' frames, GET upstream RTCP.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { Base64StreamDecoder } from '../../../../src/tunnel/codec/base64-stream.js'
import { RtspDemuxer, type RtspUnit } from '../../../../src/tunnel/codec/demux.js'
import { classifyTunnelLeg, parseHttpHead } from '../../../../src/tunnel/codec/http-head.js'
import { getHeader } from '../../../../src/tunnel/codec/rtsp-message.js'
import { loadTcpConnections, type TcpConnection } from '../../../helpers/pcap.js'

const DIR = fileURLToPath(new URL('../../../fixtures/captures/', import.meta.url))

interface Expect {
  cookie: string
  getVersion: string
  /** Units decoded from the POST body (methods, or $channel). */
  post: string[]
  /** Non-frame units of the GET leg (status/cseq). */
  getMessages: string[]
  frames: number
  /** Raw '$' frames on the GET connection's upstream (openRTSP). */
  getUpstream: string[]
}

const CAPTURES: Record<string, Expect> = {
  'ffmpeg-to-gst-rtsp-server': {
    cookie: 'c008e0d7f160f387',
    getVersion: 'HTTP/1.1',
    post: ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY'],
    getMessages: ['200/1', '200/2', '200/3', '200/4', '200/5'],
    frames: 619,
    getUpstream: []
  },
  'ffmpeg-to-live555MediaServer': {
    cookie: '3e455dba215d0cbf',
    getVersion: 'HTTP/1.1',
    post: ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', 'TEARDOWN'],
    getMessages: ['200/1', '200/2', '200/3', '200/4', '200/5', '200/6'],
    frames: 462,
    getUpstream: []
  },
  'gst-to-gst-rtsp-server': {
    cookie: 'nqsnfvjliupmloevplriycv',
    getVersion: 'HTTP/1.0',
    post: ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', '$1', '$3', 'PAUSE'],
    getMessages: ['200/1', '200/2', '200/3', '200/4', '200/5', '400/6'],
    frames: 627,
    getUpstream: []
  },
  'gst-to-live555MediaServer': {
    cookie: 'edqastfybvnuakprlpjiacp',
    getVersion: 'HTTP/1.0',
    post: ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', '$1', '$3', 'PAUSE', 'TEARDOWN'],
    getMessages: ['200/1', '200/2', '200/3', '200/4', '200/5', '405/6', '200/7'],
    frames: 462,
    getUpstream: []
  },
  'openrtsp-to-gst-rtsp-server': {
    cookie: '653a9acfbf6355bb292edaf',
    getVersion: 'HTTP/1.0',
    post: ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', 'TEARDOWN'],
    getMessages: ['200/2', '200/3', '200/4', '200/5', '200/6', '200/7'],
    frames: 642,
    getUpstream: ['$1:48', '$3:48', '$1:40', '$3:40']
  },
  'openrtsp-to-live555MediaServer': {
    cookie: 'f5e0ec185651abeedf3b8f2',
    getVersion: 'HTTP/1.0',
    post: ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', 'TEARDOWN'],
    getMessages: ['200/2', '200/3', '200/4', '200/5', '200/6', '200/7'],
    frames: 463,
    getUpstream: ['$1:48', '$3:48', '$1:40', '$3:40']
  }
}

function describeUnit (u: RtspUnit): string {
  if (u.kind === 'frame') return `$${u.channel}`
  if (u.kind === 'request') return u.method
  if (u.kind === 'response') return `${u.status}/${getHeader(u, 'cseq') ?? '?'}`
  return `error:${u.code}`
}

/** A comparable, compact fingerprint of a unit list (kind, identity, raw bytes length + content). */
function fingerprint (units: RtspUnit[]): { names: string[], raws: Buffer } {
  return {
    names: units.map((u) => u.kind === 'frame'
      ? `$${u.channel}:${u.payload.length}`
      : u.kind === 'error' ? `error:${u.code}` : `${describeUnit(u)}:${u.raw.length}`),
    raws: Buffer.concat(units.map((u) => u.kind === 'error' ? u.data : u.raw))
  }
}

function demuxPieces (pieces: Buffer[]): RtspUnit[] {
  const d = new RtspDemuxer()
  const out: RtspUnit[] = []
  for (const p of pieces) out.push(...d.push(p))
  return out
}

function b64Pieces (pieces: Buffer[]): Buffer {
  const d = new Base64StreamDecoder()
  return Buffer.concat(pieces.map((p) => d.push(p).data))
}

/** Deterministic PRNG (mulberry32) for random chunk sizes. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function randomChunks (buf: Buffer, seed: number, max: number): Buffer[] {
  const r = rng(seed)
  const out: Buffer[] = []
  for (let i = 0; i < buf.length;) {
    const n = 1 + Math.floor(r() * max)
    out.push(buf.subarray(i, i + n))
    i += n
  }
  return out
}

function bytesOf (buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1))
  return out
}

/** Check the units tile `input`, with only CR/LF between them; returns the unparsed tail length. */
function checkTiling (tt: Pick<typeof t, 'fail' | 'ok'>, input: Buffer, units: RtspUnit[]): number {
  let pos = 0
  for (const u of units) {
    if (u.kind === 'error') { tt.fail(`unexpected error unit ${u.code}: ${u.reason}`); return -1 }
    while (pos < input.length && (input[pos] === 0x0d || input[pos] === 0x0a) && input[pos] !== u.raw[0]) pos++
    if (!input.subarray(pos, pos + u.raw.length).equals(u.raw)) {
      tt.fail(`unit ${describeUnit(u)} not found at offset ${pos}`); return -1
    }
    pos += u.raw.length
  }
  return input.length - pos
}

function legs (conns: TcpConnection[]): { get: TcpConnection, post: TcpConnection } {
  const get = conns.find((c) => c.clientToServer.subarray(0, 4).toString() === 'GET ')
  const post = conns.find((c) => c.clientToServer.subarray(0, 5).toString() === 'POST ')
  if (!get || !post) throw new Error('capture lacks a GET or POST leg')
  return { get, post }
}

for (const [name, exp] of Object.entries(CAPTURES)) {
  t.test(name, async (tt) => {
    const conns = loadTcpConnections(`${DIR}${name}.pcap`)
    tt.equal(conns.filter((c) => c.clientToServer.length > 0).length, 2, 'two TCP connections carry data')
    for (const c of conns) tt.equal(c.gaps, 0, 'no holes in the reassembled streams')
    const { get, post } = legs(conns)

    tt.test('HTTP heads: parse, classify, incomplete at every shorter prefix', async (ht) => {
      for (const [leg, conn] of [['get', get], ['post', post]] as const) {
        const whole = parseHttpHead(conn.clientToServer)
        if (whole.state !== 'ok') { ht.fail(`${leg} head did not parse: ${JSON.stringify(whole)}`); continue }
        const head = whole.head
        ht.equal(head.method, leg === 'get' ? 'GET' : 'POST')
        ht.equal(head.version, exp.getVersion)
        ht.same(classifyTunnelLeg(head), { leg, cookie: exp.cookie })
        ht.equal(conn.clientToServer.subarray(head.headLength - 4, head.headLength).toString('latin1'), '\r\n\r\n')
        let wrong = 0
        for (let k = 0; k < head.headLength; k++) {
          const r = parseHttpHead(conn.clientToServer.subarray(0, k))
          if (r.state !== 'incomplete') wrong++
        }
        ht.equal(wrong, 0, `${leg}: every prefix shorter than ${head.headLength} bytes is incomplete`)
        const exact = parseHttpHead(conn.clientToServer.subarray(0, head.headLength))
        ht.same(exact, whole, `${leg}: complete exactly at the blank line`)
      }
    })

    tt.test('POST body: base64 → RTSP, every split, 1 byte at a time', async (pt) => {
      const head = parseHttpHead(post.clientToServer)
      if (head.state !== 'ok') throw new Error('bad POST head')
      const body = post.clientToServer.subarray(head.head.headLength)
      const dec = new Base64StreamDecoder()
      const r = dec.push(body)
      pt.equal(r.garbage, 0, 'no garbage in a real client\'s base64')
      pt.equal(dec.pendingSymbols, 0, 'every message ends on a quantum boundary')
      const units = demuxPieces([r.data])
      pt.same(units.map(describeUnit), exp.post)
      pt.equal(checkTiling(pt, r.data, units), 0, 'decoded POST is exactly these units')
      let bad = 0
      for (let k = 0; k <= body.length; k++) {
        if (!b64Pieces([body.subarray(0, k), body.subarray(k)]).equals(r.data)) bad++
      }
      pt.equal(bad, 0, `all ${body.length + 1} two-piece splits decode identically`)
      pt.same(b64Pieces(bytesOf(body)), r.data, '1 byte at a time')
      const decodedBytes = bytesOf(r.data)
      pt.same(fingerprint(demuxPieces(decodedBytes)), fingerprint(units), 'demuxer fed 1 decoded byte at a time')
    })

    tt.test('GET leg: server RTSP + frames, split everywhere', async (gt) => {
      const down = get.serverToClient
      const headEnd = down.indexOf('\r\n\r\n') + 4
      gt.match(down.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.[01] 200 OK\r\n/)
      const stream = down.subarray(headEnd)
      const units = demuxPieces([stream])
      gt.same(units.filter((u) => u.kind !== 'frame').map(describeUnit), exp.getMessages)
      gt.equal(units.filter((u) => u.kind === 'frame').length, exp.frames)
      gt.equal(checkTiling(gt, stream, units), 0, 'units tile the stream (only CR/LF skipped), nothing left over')
      const whole = fingerprint(units)
      // Every two-piece split of the first ~4 KB (all RTSP replies up to PLAY, and the first frames).
      const region = stream.subarray(0, 4096)
      const regionWhole = fingerprint(demuxPieces([region]))
      let bad = 0
      for (let k = 0; k <= region.length; k++) {
        const f = fingerprint(demuxPieces([region.subarray(0, k), region.subarray(k)]))
        if (!f.raws.equals(regionWhole.raws) || f.names.join() !== regionWhole.names.join()) bad++
      }
      gt.equal(bad, 0, `all ${region.length + 1} two-piece splits of the first 4 KB give the same units`)
      gt.same(fingerprint(demuxPieces(bytesOf(stream))), whole, 'whole stream 1 byte at a time')
      for (const seed of [1, 2, 3]) {
        gt.same(fingerprint(demuxPieces(randomChunks(stream, seed, 3000))), whole, `random chunks (seed ${seed})`)
      }
    })

    tt.test('GET upstream after the head', async (ut) => {
      const head = parseHttpHead(get.clientToServer)
      if (head.state !== 'ok') throw new Error('bad GET head')
      const up = get.clientToServer.subarray(head.head.headLength)
      const units = demuxPieces([up])
      ut.same(units.map((u) => u.kind === 'frame' ? `$${u.channel}:${u.payload.length}` : describeUnit(u)),
        exp.getUpstream)
      for (const u of units) {
        if (u.kind === 'frame') ut.equal(u.payload[1], 201, 'RTCP receiver report (PT 201) first')
      }
      ut.same(fingerprint(demuxPieces(bytesOf(up))), fingerprint(units), '1 byte at a time')
    })
  })
}

t.test('quirks the session code must handle', async (tt) => {
  const live555 = legs(loadTcpConnections(`${DIR}ffmpeg-to-live555MediaServer.pcap`))
  const stream = live555.get.serverToClient.subarray(live555.get.serverToClient.indexOf('\r\n\r\n') + 4)
  const seq = demuxPieces([stream]).slice(0, 7).map((u) => u.kind === 'frame' ? `$${u.channel}` : describeUnit(u))
  tt.same(seq, ['200/1', '200/2', '200/3', '200/4', '$1', '$3', '200/5'],
    'live555 sends RTCP SRs before the PLAY reply')
  const open = legs(loadTcpConnections(`${DIR}openrtsp-to-live555MediaServer.pcap`))
  const head = parseHttpHead(open.get.clientToServer)
  tt.ok(head.state === 'ok' && head.head.headers.some(([k]) => k === 'CSeq'), 'openRTSP puts CSeq on its HTTP GET')
  const post = parseHttpHead(open.post.clientToServer)
  if (post.state !== 'ok') throw new Error('bad POST head')
  const units =
    demuxPieces([new Base64StreamDecoder().push(open.post.clientToServer.subarray(post.head.headLength)).data])
  const uris = units.flatMap((u) => u.kind === 'request' ? [u.uri] : [])
  tt.same(uris.slice(0, 3),
    ['rtsp://127.0.0.1:80/test.mkv', 'rtsp://127.0.0.1:80/test.mkv', 'rtsp://127.0.0.1/test.mkv/track1'],
    'openRTSP switches from :80 to the port-less Content-Base authority mid-session')
})

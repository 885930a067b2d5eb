import t from 'tap'
import fc from 'fast-check'
import { Base64StreamDecoder } from '../../../../src/tunnel/codec/base64-stream.js'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'

/** Decode `input` pushed in the given pieces; returns the concatenated output and garbage. */
function decodePieces (pieces: Buffer[]): { data: Buffer, garbage: number } {
  const d = new Base64StreamDecoder()
  const out: Buffer[] = []
  let garbage = 0
  for (const p of pieces) {
    const r = d.push(p)
    out.push(r.data)
    garbage += r.garbage
  }
  if (d.garbageTotal !== garbage) throw new Error('garbageTotal disagrees with the per-push counts')
  return { data: Buffer.concat(out), garbage }
}

const oneShot = (s: string | Buffer): Buffer => decodePieces([Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1')]).data

type Checker = Pick<typeof t, 'equal' | 'same' | 'fail'>

/** Every 2-piece split and the 1-byte feed must equal the one-shot result. */
function checkAllSplits (tt: Checker, input: Buffer, expected: Buffer, name: string): void {
  let bad = 0
  for (let k = 0; k <= input.length; k++) {
    const r = decodePieces([input.subarray(0, k), input.subarray(k)])
    if (!r.data.equals(expected)) { bad++; if (bad < 3) tt.fail(`${name}: split at ${k} differs`) }
  }
  tt.equal(bad, 0, `${name}: all ${input.length + 1} two-piece splits decode identically`)
  const bytes: Buffer[] = []
  for (let i = 0; i < input.length; i++) bytes.push(input.subarray(i, i + 1))
  tt.same(decodePieces(bytes).data, expected, `${name}: 1 byte at a time`)
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')

// Table: name, base64 input as sent, decoded bytes.
const cases: Array<{ name: string, bytes: string, decoded: string, garbage?: number }> = [
  { name: 'empty', bytes: '', decoded: '' },
  { name: 'one quantum', bytes: 'QUJD', decoded: 'ABC' },
  { name: 'one pad', bytes: 'QUI=', decoded: 'AB' },
  { name: 'two pads', bytes: 'QQ==', decoded: 'A' },
  { name: 'padded messages back to back', bytes: 'QQ==QUI=QUJD', decoded: 'AABABC' },
  { name: 'pad without second = (QQ=)', bytes: 'QQ=QUJD', decoded: 'AABC' },
  { name: 'unpadded partial quantum stays pending', bytes: 'QUJDQQ', decoded: 'ABC' },
  { name: 'CRLF and spaces inside quanta', bytes: 'QU\r\nJD\tQ U I =', decoded: 'ABCAB' },
  { name: 'NUL after each message (GStreamer 1.16-1.18)', bytes: 'QUI=\0QUJD\0', decoded: 'ABABC' },
  { name: 'URL-safe alphabet', bytes: '-_-_', decoded: '\xfb\xff\xbf' },
  { name: 'standard alphabet high bits', bytes: '+/+/', decoded: '\xfb\xff\xbf' },
  { name: 'garbage inside a quantum is skipped', bytes: 'QU!JDQ\xffUJD', decoded: 'ABCABC', garbage: 2 },
  { name: 'lone symbol before = is garbage', bytes: 'Q=QUJD', decoded: 'ABC', garbage: 1 },
  { name: 'stray = are ignored', bytes: '===QUJD==', decoded: 'ABC' }
]

t.test('table', async (tt) => {
  for (const c of cases) {
    const input = Buffer.from(c.bytes, 'latin1')
    const r = decodePieces([input])
    tt.equal(r.data.toString('latin1'), c.decoded, c.name)
    tt.equal(r.garbage, c.garbage ?? 0, `${c.name}: garbage`)
    checkAllSplits(tt, input, Buffer.from(c.decoded, 'latin1'), c.name)
  }
})

t.test("Node's Buffer.from(…, 'base64') loses data; the stream decoder does not", async (tt) => {
  // Documented in the reference §3.8 and style guide §5 (Node v20.20.2).
  tt.equal(Buffer.from('QUI=QUJD', 'base64').toString('latin1'), 'AB',
    'Node stops at the first "=": second message lost')
  tt.equal(Buffer.from('QQ==QQ==', 'base64').toString('latin1'), 'A', 'Node: second padded segment lost')
  tt.equal(Buffer.from('dGV', 'base64').toString('latin1'), 'te',
    'Node decodes a partial quantum (a split would corrupt)')
  tt.equal(oneShot('QUI=QUJD').toString('latin1'), 'ABABC')
  tt.equal(oneShot('QQ==QQ==').toString('latin1'), 'AA')
  const d = new Base64StreamDecoder()
  tt.equal(d.push(Buffer.from('dGV')).data.toString(), 'te'.slice(0, 0), 'partial quantum is held back')
  tt.equal(d.pendingSymbols, 3)
  tt.equal(d.push(Buffer.from('zdA==')).data.toString(), 'test')
})

// Reference §1.9 worked example: exact strings.
const OPTIONS_B64 = 'T1BUSU9OUyBydHNwOi8vZ3cuZXhhbXBsZS5uZXQvbGl2ZS9jYW0xIFJUU1AvMS4wDQpDU2VxOiAxDQpV' +
  'c2VyLUFnZW50OiBkZW1vLzEuMA0KDQo='
const OPTIONS = 'OPTIONS rtsp://gw.example.net/live/cam1 RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: demo/1.0\r\n\r\n'
const DESCRIBE_SEG1 = 'REVTQ1JJQkUgcnRzcDovL2d3LmV4YW1wbGUub'
const DESCRIBE_SEG2 = 'mV0L2xpdmUvY2FtMSBSVFNQLzEuMA0KQ1NlcTogMg0KQWNjZXB0OiBhcHBsaWNhdGlvbi9zZHANCg0K'
const DESCRIBE = 'DESCRIBE rtsp://gw.example.net/live/cam1 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n'
const GST_RTCP_B64 = 'JAEAIIHJAAcaKzxNC63wDQAAAAAAABI0AAAAEAAAAAAAAAAA'

t.test('reference §1.9 worked example', async (tt) => {
  tt.equal(OPTIONS_B64.length, 112)
  tt.equal(OPTIONS.length, 83)
  tt.equal(DESCRIBE_SEG1.length, 37)
  tt.equal(DESCRIBE_SEG1.length + DESCRIBE_SEG2.length, 116)
  tt.equal(DESCRIBE.length, 87)
  const d = new Base64StreamDecoder()
  const dm = new RtspDemuxer()
  const r1 = d.push(Buffer.from(OPTIONS_B64))
  tt.equal(r1.data.toString('latin1'), OPTIONS)
  const u1 = dm.push(r1.data)
  tt.equal(u1.length, 1)
  tt.match(u1[0], {
    kind: 'request',
    method: 'OPTIONS',
    uri: 'rtsp://gw.example.net/live/cam1',
    headers: [['CSeq', '1'], ['User-Agent', 'demo/1.0']]
  })
  const s1 = d.push(Buffer.from(DESCRIBE_SEG1))
  tt.equal(d.pendingSymbols, 1, '37 chars: one symbol of a quantum carried over')
  tt.same(dm.push(s1.data), [], 'nothing complete yet')
  const s2 = d.push(Buffer.from(DESCRIBE_SEG2))
  tt.equal(Buffer.concat([s1.data, s2.data]).toString('latin1'), DESCRIBE)
  const u2 = dm.push(s2.data)
  tt.match(u2, [{ kind: 'request', method: 'DESCRIBE', headers: [['CSeq', '2'], ['Accept', 'application/sdp']] }])
  const rtcp = d.push(Buffer.from(GST_RTCP_B64))
  tt.equal(rtcp.data.length, 36)
  tt.equal(rtcp.data.subarray(0, 8).toString('hex'), '2401002081c90007')
  const u3 = dm.push(rtcp.data)
  tt.match(u3, [{ kind: 'frame', channel: 1 }])
  tt.equal(u3[0]!.kind === 'frame' && u3[0]!.payload.length, 32)
  tt.equal(d.garbageTotal, 0)
  const all = Buffer.from(OPTIONS_B64 + DESCRIBE_SEG1 + DESCRIBE_SEG2 + GST_RTCP_B64)
  checkAllSplits(tt, all, Buffer.concat([Buffer.from(OPTIONS + DESCRIBE, 'latin1'), rtcp.data]), '§1.9 stream')
})

const MESSAGES = [
  OPTIONS,
  DESCRIBE,
  'SETUP rtsp://gw.example.net/live/cam1/trackID=1 RTSP/1.0\r\nCSeq: 3\r\nTransport: ' +
    'RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n',
  'PLAY rtsp://gw.example.net/live/cam1/ RTSP/1.0\r\nCSeq: 4\r\nSession: 12345678\r\nRange: npt=0.000-\r\n\r\n',
  'GET_PARAMETER rtsp://gw.example.net/live/cam1/ RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\n\r\n',
  'x', // 1 byte: "eA=="
  'xy' // 2 bytes: "eHk="
]

t.test('§6 checks 10-14', async (tt) => {
  const expected = Buffer.from(MESSAGES.join(''), 'latin1')
  // 11: each message separately padded; 10: every split incl. between "=" chars
  const separately = Buffer.from(MESSAGES.map((m) => b64(Buffer.from(m, 'latin1'))).join(''))
  tt.ok(separately.includes('==eHk='), 'input has "==" directly before the next message')
  tt.same(oneShot(separately), expected, 'check 11: separately padded')
  checkAllSplits(tt, separately, expected, 'check 10 (separately padded)')
  // 12: one continuous stream for all messages
  const continuous = Buffer.from(b64(expected))
  tt.same(oneShot(continuous), expected, 'check 12: continuous')
  checkAllSplits(tt, continuous, expected, 'check 12 (continuous)')
  // 13: MIME 76-column lines (CRLF) plus NULs between and inside quanta
  const mime = b64(expected).replace(/.{76}/g, '$&\r\n')
  tt.same(oneShot(mime), expected, 'check 13: MIME lines')
  const nuls = Buffer.from(MESSAGES.map((m) => b64(Buffer.from(m, 'latin1')) + '\0').join('').replace(/(.{5})/g,
    '$1\0 \t'),
  'latin1')
  tt.same(oneShot(nuls), expected, 'check 13: NUL/SP/TAB inside and between quanta')
  checkAllSplits(tt, nuls, expected, 'check 13 (NULs)')
  // 14: garbage counted, later messages intact
  const parts = MESSAGES.map((m) => b64(Buffer.from(m, 'latin1')))
  const withGarbage = Buffer.from(parts[0] + '!!' + parts[1] + '\xff' + parts.slice(2).join(''), 'latin1')
  const r = decodePieces([withGarbage])
  tt.equal(r.garbage, 3, 'check 14: 3 garbage bytes counted')
  tt.same(r.data, expected, 'garbage between padded messages loses nothing')
  // Garbage inside a message's quanta is skipped like whitespace: that message and every later
  // one decode intact (resetting the quantum instead would turn the rest of the message into
  // junk that the demuxer then merges with the next message's head, losing it too).
  const midGarbage = Buffer.from(parts[0]!.slice(0, 10) + '*' + parts[0]!.slice(10) + parts.slice(1).join(''), 'latin1')
  const m = decodePieces([midGarbage])
  tt.equal(m.garbage, 1, 'the \'*\' is counted')
  const units = new RtspDemuxer().push(m.data)
  tt.same(units.map((u) => u.kind === 'request' ? u.method : u.kind),
    ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'GET_PARAMETER'], 'every request, the damaged one included, decodes')
  tt.same(m.data, expected, 'decoded bytes identical to the clean stream')
})

t.test('large input: output size and speed sanity', async (tt) => {
  const payload = Buffer.alloc(3 * 1024 * 1024)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 8)) & 0xff
  const enc = Buffer.from(payload.toString('base64'))
  const d = new Base64StreamDecoder()
  const out: Buffer[] = []
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < enc.length; i += 1460) out.push(d.push(enc.subarray(i, i + 1460)).data)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  tt.same(Buffer.concat(out), payload)
  tt.ok(ms < 2000, `4 MB of base64 in 1460-byte pushes decoded in ${ms.toFixed(0)} ms`)
})

t.test('property: per-message / continuous / whitespace+NUL styles, random splits', async (tt) => {
  const message = fc.uint8Array({ minLength: 0, maxLength: 120 }).map((a) => Buffer.from(a))
  const style = fc.constantFrom('per-message', 'continuous', 'mime', 'noise', 'url-safe')
  fc.assert(fc.property(fc.array(message, { maxLength: 8 }), style, fc.array(fc.nat(), { maxLength: 12 }),
    (msgs, st, cuts) => {
      const expected = Buffer.concat(msgs)
      let text: string
      switch (st) {
        case 'continuous': text = expected.toString('base64'); break
        case 'mime': text = expected.toString('base64').replace(/.{76}/g, '$&\r\n'); break
        case 'noise': text = msgs.map((m) => m.toString('base64') + '\0').join('').replace(/(.{3})/g, '$1 \0\n'); break
        case 'url-safe': text = msgs.map((m) =>
          m.toString('base64url') + '='.repeat((4 - (m.toString('base64url').length % 4)) % 4)).join(''); break
        default: text = msgs.map((m) => m.toString('base64')).join('')
      }
      const input = Buffer.from(text, 'latin1')
      const points = [...new Set(cuts.map((c) => input.length === 0 ? 0 : c % (input.length + 1)))]
        .sort((a, b) => a - b)
      const pieces: Buffer[] = []
      let prev = 0
      for (const p of points) { pieces.push(input.subarray(prev, p)); prev = p }
      pieces.push(input.subarray(prev))
      const d = new Base64StreamDecoder()
      const got = Buffer.concat(pieces.map((p) => d.push(p).data))
      // An unpadded continuous stream may hold back a partial quantum only if its length is not 0 mod 3.
      return got.equals(expected) && d.garbageTotal === 0
    }), { seed: 0x7e57, numRuns: 400 })
  tt.pass('property held')
})

t.test('property: arbitrary bytes never throw, garbage is counted consistently', async (tt) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), (arr, cut) => {
    const input = Buffer.from(arr)
    const k = cut % (input.length + 1)
    const a = decodePieces([input])
    const b = decodePieces([input.subarray(0, k), input.subarray(k)])
    return a.data.equals(b.data) && a.garbage === b.garbage && a.data.length <= Math.ceil(input.length * 3 / 4)
  }), { seed: 42, numRuns: 500 })
  tt.pass('property held')
})

/**
 * Property tests for RtspDemuxer (the unit framer behind both tunnel legs), and garbage
 * robustness of the decoder → demuxer pipeline: units are identical whatever the split, and
 * bad input yields only coded error units (codes from ERROR_CODES), never a throw.
 */
import t from 'tap'
import fc from 'fast-check'
import { ERROR_CODES } from '../../../../src/core/errors.js'
import { Base64StreamDecoder } from '../../../../src/tunnel/codec/base64-stream.js'
import { RtspDemuxer, type RtspUnit } from '../../../../src/tunnel/codec/demux.js'
import { encodeInterleaved } from '../../../../src/tunnel/codec/interleaved.js'
import { serializeMessage, type Header, type RtspMessage } from '../../../../src/tunnel/codec/rtsp-message.js'

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/)
const value = fc.stringMatching(/^[!-~]([ -~]{0,40}[!-~])?$/)
const header = fc.tuple(token.filter((n) => n.toLowerCase() !== 'content-length'),
  value).map(([k, v]): Header => [k, v])
const body = fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)))

const request = fc.record({
  method: fc.constantFrom('OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER',
    'SET_PARAMETER'),
  uri: fc.constantFrom('*', 'rtsp://gw/live', 'rtsp://127.0.0.1:8554/live/stream=0', 'rtsp://h/a?b=c'),
  headers: fc.array(header, { maxLength: 6 }),
  cseq: fc.nat({ max: 99999 }),
  body
}).map(({ method, uri, headers, cseq, body }): RtspMessage =>
  ({ kind: 'request', method, uri, version: 'RTSP/1.0', headers: [['CSeq', String(cseq)], ...headers], body }))

const response = fc.record({
  status: fc.constantFrom(200, 400, 401, 404, 454, 461, 503),
  headers: fc.array(header, { maxLength: 6 }),
  cseq: fc.nat({ max: 99999 }),
  body
}).map(({ status, headers, cseq, body }): RtspMessage =>
  ({
    kind: 'response',
    version: 'RTSP/1.0',
    status,
    reason: 'Some Reason',
    headers: [['CSeq', String(cseq)], ...headers],
    body
  }))

const frame = fc.record({ channel: fc.nat({ max: 255 }), payload: fc.uint8Array({ maxLength: 1500 }) })
  .map(({ channel, payload }) => encodeInterleaved(channel, Buffer.from(payload)))

const unitBytes = fc.oneof(
  request.map(serializeMessage),
  response.map(serializeMessage),
  frame,
  fc.constantFrom(Buffer.from('\r\n'), Buffer.from('\n'))
)

function split (buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let prev = 0
  for (const p of points) { out.push(buf.subarray(prev, p)); prev = p }
  out.push(buf.subarray(prev))
  return out
}

function demux (pieces: Buffer[]): RtspUnit[] {
  const d = new RtspDemuxer()
  return pieces.flatMap((p) => d.push(p))
}

function key (u: RtspUnit): string {
  switch (u.kind) {
    case 'frame': return `F${u.channel}:${u.payload.toString('hex')}`
    case 'error': return `E${u.code}`
    case 'request':
      return `Q${u.method} ${u.uri} ${JSON.stringify(u.headers)} ${u.body.toString('hex')} ${u.raw.toString('hex')}`
    case 'response':
      return `R${u.status} ${JSON.stringify(u.headers)} ${u.body.toString('hex')} ${u.raw.toString('hex')}`
  }
}

const codes = new Set(Object.keys(ERROR_CODES))

t.test('property: serialized units, random splits → identical units, raw bytes exact', async (tt) => {
  fc.assert(fc.property(fc.array(unitBytes, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 16 }),
    (units, cuts) => {
      const stream = Buffer.concat(units)
      const whole = demux([stream])
      const pieces = demux(split(stream, cuts))
      const expectedRaw = units.filter((u) => !(u.length <= 2 && (u[0] === 0x0d || u[0] === 0x0a)))
      return whole.length === expectedRaw.length &&
      whole.every((u, i) => u.kind !== 'error' && u.raw.equals(expectedRaw[i]!)) &&
      pieces.length === whole.length && pieces.every((u, i) => key(u) === key(whole[i]!))
    }), { seed: 2326, numRuns: 300 })
  tt.pass('property held')
})

t.test('property: the same through base64 per message (GStreamer style) and the stream decoder', async (tt) => {
  fc.assert(fc.property(fc.array(unitBytes, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 16 }), fc.boolean(),
    (units, cuts, nul) => {
      const b64 = Buffer.from(units.map((u) => u.toString('base64') + (nul ? '\0' : '')).join(''))
      const dec = new Base64StreamDecoder()
      const d = new RtspDemuxer()
      const got = split(b64, cuts).flatMap((p) => d.push(dec.push(p).data))
      const want = demux([Buffer.concat(units)])
      return dec.garbageTotal === 0 && got.length === want.length && got.every((u, i) => key(u) === key(want[i]!))
    }), { seed: 1999, numRuns: 200 })
  tt.pass('property held')
})

t.test('property: garbage never throws, only coded errors', async (tt) => {
  const junk = fc.oneof(
    fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
    fc.stringMatching(/^[A-Z]{1,8} [ -~]{0,30}(\r?\n[ -~]{0,30}){0,5}\r?\n\r?\n$/).map((s) => Buffer.from(s, 'latin1')),
    fc.constantFrom(Buffer.from('RTSP/1.0 200 OK\r\nContent-Length: x\r\n\r\n'),
      Buffer.from('PLAY x RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n'))
  )
  fc.assert(fc.property(fc.array(fc.oneof(junk, unitBytes), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }),
    (parts, cuts) => {
      const stream = Buffer.concat(parts)
      const d = new RtspDemuxer({ maxHeadBytes: 512, maxBodyBytes: 4096 })
      let fatal = false
      for (const p of split(stream, cuts)) {
        for (const u of d.push(p)) {
          if (u.kind === 'error') {
            if (!codes.has(u.code) || fatal) return false
            fatal = u.fatal
          }
        }
      }
      // The same bytes as base64 garbage: the decoder never throws and counts non-alphabet bytes.
      const dec = new Base64StreamDecoder()
      for (const p of split(stream, cuts)) dec.push(p)
      return dec.garbageTotal <= stream.length
    }), { seed: 404, numRuns: 400 })
  tt.pass('property held')
})

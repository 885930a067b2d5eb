/**
 * The SDP writer and parser (src/tunnel/codec/sdp/write.ts, parse.ts) round trip: what writeSdp
 * and buildSdp write, parseSdp reads back (tracks, payload types, codecs, clock rates, controls,
 * fmtp, session control, range and broadcast), for any description the writer takes.
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { parseSdp, sdpVerdict } from '../../../../../src/tunnel/codec/sdp/parse.js'
import {
  buildSdp, profileLevelId, spropParameterSets, writeSdp, type SdpMediaOut, type SdpSessionOut
} from '../../../../../src/tunnel/codec/sdp/write.js'

/** Visible ASCII without spaces at the ends: what a control, fmtp or attribute value may be. */
const token = fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/)
const control = fc.oneof(fc.constantFrom('*', 'trackID=1', 'stream=0', '1', 'rtsp://h:8554/live/x/'), token)

const media: fc.Arbitrary<SdpMediaOut> = fc.record({
  media: fc.constantFrom('video', 'audio', 'application', 'text'),
  payloadType: fc.integer({ min: 0, max: 127 }),
  encoding: fc.stringMatching(/^[A-Za-z][A-Za-z0-9.-]{0,15}$/),
  clockRate: fc.integer({ min: 1, max: 1_000_000 }),
  channels: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  fmtp: fc.option(token, { nil: undefined }),
  attributes: fc.array(fc.constantFrom('framerate:25', 'cliprect:0,0,240,320', 'x-dimensions:320,240', 'sendonly'),
    { maxLength: 3 }),
  control
}, { requiredKeys: ['media', 'payloadType', 'encoding', 'clockRate', 'control'] })

const session: fc.Arbitrary<SdpSessionOut> = fc.record({
  sessionId: fc.stringMatching(/^[0-9]{1,19}$/),
  address: fc.constantFrom('0.0.0.0', '127.0.0.1', 'origin.example'),
  name: token,
  attributes: fc.array(fc.constantFrom('tool:tunnelgate-origin', 'x-qt-text-nam:demo', 'recvonly'), { maxLength: 2 }),
  control,
  range: fc.oneof(
    fc.constant({ kind: 'now' as const }),
    fc.constant({ kind: 'none' as const }),
    fc.double({ min: 0.001, max: 1e6, noNaN: true }).map(endSec => ({ kind: 'finite' as const, endSec }))
  ),
  broadcast: fc.boolean(),
  media: fc.array(media, { maxLength: 4 })
})

t.test('parseSdp(writeSdp(d)) reads d back', async t => {
  fc.assert(fc.property(session, d => {
    const s = parseSdp(writeSdp(d))
    assert.deepEqual(s.tracks, d.media.map((m, index) => ({
      index,
      media: m.media,
      payloadType: m.payloadType,
      codec: m.encoding.toLowerCase(),
      clockRate: m.clockRate,
      control: m.control,
      fmtp: m.fmtp ?? ''
    })))
    assert.equal(s.sessionControl, d.control)
    assert.equal(s.range, d.range.kind)
    assert.equal(s.broadcast, d.broadcast)
  }), { numRuns: 300 })
  t.pass('300 descriptions')
})

t.test('writeSdp: CRLF lines, every one an SDP type line', async t => {
  fc.assert(fc.property(session, d => {
    const text = writeSdp(d)
    return text.endsWith('\r\n') && text.slice(0, -2).split('\r\n').every(l => /^[a-z]=/.test(l) && !/[\r\n]/.test(l))
  }), { numRuns: 300 })
  t.pass('every line well formed')
})

const bytes = (min: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: 40 }).map(b => Buffer.from(b))

t.test('buildSdp round trip: H.264 and AAC tracks, VOD and live', async t => {
  const video = fc.record({
    kind: fc.constant('video' as const),
    payloadType: fc.integer({ min: 96, max: 127 }),
    control,
    sps: bytes(4),
    pps: fc.array(bytes(1), { minLength: 1, maxLength: 2 }),
    width: fc.integer({ min: 1, max: 4096 }),
    height: fc.integer({ min: 1, max: 4096 })
  })
  const audio = fc.record({
    kind: fc.constant('audio' as const),
    payloadType: fc.integer({ min: 96, max: 127 }),
    control,
    sampleRate: fc.constantFrom(8000, 16000, 44100, 48000),
    channels: fc.integer({ min: 1, max: 8 }),
    asc: bytes(2)
  })
  const duration = fc.option(fc.double({ min: 0, max: 1e5, noNaN: true }), { nil: undefined })
  fc.assert(fc.property(fc.array(fc.oneof(video, audio), { maxLength: 3 }), duration, (tracks, durationSec) => {
    const input = { name: 'demo', origin: '127.0.0.1', sessionId: '1', tracks }
    const s = parseSdp(buildSdp(durationSec === undefined ? input : { ...input, durationSec }))
    assert.deepEqual(s.tracks.map(x => [x.media, x.payloadType, x.codec, x.clockRate, x.control]), tracks.map(x =>
      x.kind === 'video'
        ? ['video', x.payloadType, 'h264', 90000, x.control]
        : ['audio', x.payloadType, 'mpeg4-generic', x.sampleRate, x.control]))
    tracks.forEach((x, i) => {
      const fmtp = s.tracks[i]!.fmtp
      const sets = x.kind === 'video' ? `sprop-parameter-sets=${spropParameterSets(x.sps, x.pps)}` : ''
      if (x.kind === 'video') assert.ok(fmtp.includes(`profile-level-id=${profileLevelId(x.sps)};${sets}`))
      else assert.ok(fmtp.endsWith(`;config=${x.asc.toString('hex')}`))
    })
    assert.equal(sdpVerdict(s), durationSec === undefined ? 'live' : 'vod')
    assert.equal(s.sessionControl, '*')
  }), { numRuns: 200 })
  t.pass('200 streams')
})

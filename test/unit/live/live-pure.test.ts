/**
 * Pure parts of the live fan-out: RTP/RTCP rewriting across upstream epochs (rtp-rewriter.ts),
 * keyframe detection and the GOP cache (gop-cache.ts), SDP live verdicts (tunnel/codec/sdp/parse.ts).
 */
import t from 'tap'
import { TrackRewriter, rtpSeq, rtpSsrc, rtpTimestamp, rtpPayload } from '../../../src/live/rtp-rewriter.js'
import { GopCache, h264Summary, h265Summary, type LivePacket } from '../../../src/live/gop-cache.js'
import {
  keyModeOf, parseSdp, playRangeIsLive, resolveControl, sameLayout, sdpVerdict
} from '../../../src/tunnel/codec/sdp/parse.js'

function rtp (seq: number, ts: number, ssrc: number, payload = Buffer.from([0x41, 1, 2, 3]), marker = false): Buffer {
  const b = Buffer.alloc(12 + payload.length)
  b[0] = 0x80
  b[1] = (marker ? 0x80 : 0) | 96
  b.writeUInt16BE(seq & 0xffff, 2)
  b.writeUInt32BE(ts >>> 0, 4)
  b.writeUInt32BE(ssrc >>> 0, 8)
  payload.copy(b, 12)
  return b
}

function sr (ssrc: number, rtpTs: number, withReport = true): Buffer {
  const len = withReport ? 52 : 28
  const b = Buffer.alloc(len + 12)
  b[0] = 0x80 | (withReport ? 1 : 0)
  b[1] = 200
  b.writeUInt16BE(len / 4 - 1, 2)
  b.writeUInt32BE(ssrc, 4)
  b.writeUInt32BE(0xe0000000, 8)
  b.writeUInt32BE(0, 12)
  b.writeUInt32BE(rtpTs >>> 0, 16)
  // SDES (one chunk) follows
  const s = len
  b[s] = 0x81
  b[s + 1] = 202
  b.writeUInt16BE(2, s + 2)
  b.writeUInt32BE(ssrc, s + 4)
  b[s + 8] = 1; b[s + 9] = 1; b[s + 10] = 0x61; b[s + 11] = 0
  return b
}

t.test('TrackRewriter: own SSRC, first epoch keeps numbers, a new epoch continues seq +1 and ts by wall time', async tt => {
  const rw = new TrackRewriter({ ssrcOut: 0xabcdef01, clockRate: 90000 })
  const a = rtp(65534, 1000, 111)
  tt.ok(rw.rtp(a, 10_000))
  tt.same([rtpSeq(a), rtpTimestamp(a), rtpSsrc(a)], [65534, 1000, 0xabcdef01], 'first epoch: upstream seq/ts, our SSRC')
  const b = rtp(65535, 4600, 111)
  rw.rtp(b, 10_040)
  tt.equal(rtpSeq(b), 65535)
  // Upstream changes (new backend, new SSRC, random numbers) 2 s later.
  rw.newEpoch()
  const c = rtp(7, 0xfffffff0, 222)
  rw.rtp(c, 12_040)
  tt.equal(rtpSeq(c), 0, 'seq continues across the wrap: 65535 → 0')
  tt.equal(rtpTimestamp(c), (4600 + 2000 * 90) >>> 0, 'ts advances by the 2 s of wall time (90 kHz)')
  tt.equal(rtpSsrc(c), 0xabcdef01, 'same SSRC')
  const d = rtp(8, 0xfffffff0 + 3600, 222)
  rw.rtp(d, 12_080)
  tt.same([rtpSeq(d), rtpTimestamp(d)], [1, (4600 + 180000 + 3600) >>> 0], 'within the epoch the offsets are constant')
  // Reordered late packet of the same epoch keeps its relative position.
  const late = rtp(6, 0xfffffff0 - 3600, 222)
  rw.rtp(late, 12_090)
  tt.equal(rtpSeq(late), 65535, 'a late packet maps below the epoch start (loss/reorder pass through)')
  // An SSRC change without newEpoch() also starts an epoch.
  const e = rtp(500, 42, 333)
  rw.rtp(e, 13_080)
  tt.equal(rtpSeq(e), 2, 'SSRC change starts a new epoch by itself')
  tt.equal(rw.epochs, 3)
  tt.notOk(rw.rtp(Buffer.from([1, 2, 3]), 0), 'not RTP: refused')
})

t.test('TrackRewriter.rtcp: SR rewritten (SSRC, RTP ts, no report blocks), SDES kept, BYE dropped', async tt => {
  const rw = new TrackRewriter({ ssrcOut: 0x01020304, clockRate: 48000 })
  rw.rtp(rtp(1, 5000, 9), 0)
  rw.newEpoch()
  const out = rw.rtcp(sr(10, 100), 1000)!
  tt.ok(out !== null)
  tt.equal(out[1], 200, 'SR first')
  tt.equal(out[0]! & 0x1f, 0, 'report count 0')
  tt.equal(out.readUInt16BE(2), 6, 'SR length without report blocks')
  tt.equal(out.readUInt32BE(4), 0x01020304, 'SR SSRC rewritten')
  tt.equal(out.readUInt32BE(16), 5000 + 48000, 'SR RTP timestamp on the continuous timeline (1 s later)')
  tt.equal(out[29], 202, 'SDES kept')
  tt.equal(out.readUInt32BE(32), 0x01020304, 'SDES SSRC rewritten')
  const p = rtp(77, 100, 10)
  rw.rtp(p, 1000)
  tt.same([rtpSeq(p), rtpTimestamp(p)], [2, 5000 + 48000], 'RTP after an SR-started epoch: seq continues, same ts mapping')
  const bye = Buffer.from([0x81, 203, 0, 1, 0, 0, 0, 10])
  tt.equal(rw.rtcp(bye, 2000), null, 'BYE dropped (the live stream goes on)')
})

t.test('rtpPayload skips CSRCs, extension and padding', async tt => {
  const b = Buffer.from([0xb1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0x65, 0xaa, 0, 2])
  tt.same(rtpPayload(b), Buffer.from([0x65, 0xaa]))
})

t.test('h264Summary / h265Summary', async tt => {
  tt.same(h264Summary(Buffer.from([0x67, 1])), { key: false, params: true }, 'SPS')
  tt.same(h264Summary(Buffer.from([0x65, 1])), { key: true, params: false }, 'IDR single NAL')
  tt.same(h264Summary(Buffer.from([0x7c, 0x85, 1])), { key: true, params: false }, 'FU-A start of an IDR')
  tt.same(h264Summary(Buffer.from([0x7c, 0x05, 1])), { key: false, params: false }, 'FU-A continuation of an IDR')
  tt.same(h264Summary(Buffer.from([0x7c, 0x81, 1])), { key: false, params: false }, 'FU-A start of a non-IDR slice')
  tt.same(h264Summary(Buffer.from([0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1, 0, 2, 0x65, 1])), { key: true, params: true }, 'STAP-A SPS+PPS+IDR')
  tt.same(h265Summary(Buffer.from([19 << 1, 1, 0])), { key: true, params: false }, 'H.265 IDR_W_RADL')
  tt.same(h265Summary(Buffer.from([33 << 1, 1, 0])), { key: false, params: true }, 'H.265 SPS')
  tt.same(h265Summary(Buffer.from([49 << 1, 1, 0x80 | 20, 0])), { key: true, params: false }, 'H.265 FU start of CRA')
})

function pkt (track: number, ts: number, payload: number[], frameStart = true): LivePacket {
  return { track, data: rtp(0, ts, 1, Buffer.from(payload)), rtcp: false, seq: 0, timestamp: ts, frameStart, key: false }
}

t.test('GopCache: starts at SPS/PPS of a key access unit; params without IDR do not; overflow; clear', async tt => {
  const g = new GopCache({ mode: 'h264', keyTrack: 0, maxBytes: 10_000 })
  const push = (p: LivePacket): boolean => g.push(p, g.summary(p, p.data.subarray(12))).gopStarted
  tt.notOk(push(pkt(0, 100, [0x41, 1])), 'P frame before any keyframe')
  tt.notOk(g.valid, 'no GOP yet')
  tt.notOk(push(pkt(1, 50, [1, 2])), 'audio')
  const sps = pkt(0, 200, [0x67, 1])
  tt.notOk(push(sps), 'SPS: candidate')
  tt.notOk(push(pkt(0, 200, [0x68, 1], false)), 'PPS')
  const audio = pkt(1, 60, [1, 2])
  push(audio)
  tt.ok(push(pkt(0, 200, [0x7c, 0x85, 1], false)), 'IDR start: GOP recognised')
  tt.ok(sps.key, 'the GOP starts at the SPS packet')
  tt.same(g.packets().map(p => p.data[12]), [0x67, 0x68, 1, 0x7c], 'SPS, PPS, the audio in between, IDR')
  push(pkt(0, 200, [0x7c, 0x45, 1], false))
  push(pkt(0, 300, [0x41, 1]))
  tt.equal(g.packets().length, 6, 'packets after the keyframe are cached')
  // Parameter sets before a non-IDR frame are ordinary packets.
  tt.notOk(push(pkt(0, 400, [0x67, 1])), 'SPS before a P frame')
  tt.notOk(push(pkt(0, 500, [0x41, 1])), 'the next access unit is not a keyframe')
  tt.equal(g.packets().length, 8, 'the SPS-only access unit joined the current GOP')
  tt.equal(g.packets()[0], sps, 'GOP still starts at the first SPS')
  // Overflow: a GOP too long to keep is dropped until the next keyframe.
  const small = new GopCache({ mode: 'h264', keyTrack: 0, maxBytes: 40 })
  small.push(pkt(0, 1, [0x65, 1]), { key: true, params: false })
  tt.ok(small.valid)
  for (let i = 0; i < 5; i++) small.push(pkt(0, 2 + i, [0x41, 1]), { key: false, params: false })
  tt.notOk(small.valid, 'overflowed GOP invalid')
  tt.equal(small.overflows, 1)
  tt.ok(small.push(pkt(0, 10, [0x65, 1]), { key: true, params: false }).gopStarted, 'next keyframe starts a valid GOP again')
  tt.ok(small.valid)
  small.clear()
  tt.notOk(small.valid, 'clear() forgets the GOP')
  tt.equal(small.bytes, 0)
  // 'any' mode: every frame start of the key track starts a GOP.
  const any = new GopCache({ mode: 'any', keyTrack: 0, maxBytes: 1000 })
  const a1 = pkt(0, 1, [1])
  tt.ok(any.push(a1, any.summary(a1, null)).gopStarted === false, 'no payload → no key in any mode when payload is null')
  tt.ok(any.push(a1, any.summary(a1, a1.data.subarray(12))).gopStarted, 'any mode: a frame start is a GOP start')
})

const ORIGIN_LIVE = ['v=0', 'o=- 1 1 IN IP4 10.0.0.5', 's=demo', 'c=IN IP4 0.0.0.0', 't=0 0', 'a=control:*', 'a=range:npt=now-', 'a=type:broadcast',
  'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=control:trackID=1', 'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 mpeg4-generic/48000/2', 'a=control:trackID=2', ''].join('\r\n')

t.test('SDP: tracks, verdicts, controls, key mode, layout', async tt => {
  const s = parseSdp(ORIGIN_LIVE)
  tt.same(s.tracks.map(x => [x.media, x.payloadType, x.codec, x.clockRate, x.control]), [['video', 96, 'h264', 90000, 'trackID=1'], ['audio', 97, 'mpeg4-generic', 48000, 'trackID=2']])
  tt.equal(s.sessionControl, '*')
  tt.equal(sdpVerdict(s), 'live', 'npt=now- / broadcast: live')
  tt.equal(sdpVerdict(parseSdp('v=0\r\na=range:npt=0-12.000\r\nm=video 0 RTP/AVP 96\r\n')), 'vod', 'finite range: VOD')
  tt.equal(sdpVerdict(parseSdp('v=0\r\na=range:npt=0-\r\nm=video 0 RTP/AVP 96\r\n')), 'unknown', 'open range: undecided until PLAY')
  tt.equal(sdpVerdict(parseSdp('v=0\r\nm=video 0 RTP/AVP 96\r\n')), 'unknown', 'no range: undecided')
  tt.ok(playRangeIsLive('npt=now-'))
  tt.notOk(playRangeIsLive('npt=0.000-12.000'))
  tt.notOk(playRangeIsLive(undefined))
  tt.equal(resolveControl('rtsp://h/live/demo/', 'trackID=1'), 'rtsp://h/live/demo/trackID=1')
  tt.equal(resolveControl('rtsp://h/live/demo', 'trackID=1'), 'rtsp://h/live/demo/trackID=1')
  tt.equal(resolveControl('rtsp://h/live/demo/', '*'), 'rtsp://h/live/demo/')
  tt.equal(resolveControl('rtsp://h/live/demo/', 'rtsp://x/y'), 'rtsp://x/y')
  tt.equal(resolveControl('rtsp://h:1/live/', '/abs/track'), 'rtsp://h:1/abs/track')
  tt.same(keyModeOf(s), { mode: 'h264', keyTrack: 0 })
  tt.same(keyModeOf(parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\n')), { mode: 'any', keyTrack: 0 }, 'audio only: any mode; PCMU static clock')
  tt.equal(parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\n').tracks[0]!.clockRate, 8000)
  tt.ok(sameLayout(s, parseSdp(ORIGIN_LIVE)))
  tt.notOk(sameLayout(s, parseSdp(ORIGIN_LIVE.replace('H264/90000', 'H265/90000'))), 'other codec: other layout')
})

/** Keyframe detection and the GOP cache of the live fan-out (src/live/gop-cache.ts). */
import t from 'tap'
import { GopCache, h264Summary, h265Summary, type LivePacket } from '../../../src/live/gop-cache.js'
import { rtp } from '../../helpers/rtp-packet.js'

t.test('h264Summary / h265Summary', async tt => {
  tt.same(h264Summary(Buffer.from([0x67, 1])), { key: false, params: true }, 'SPS')
  tt.same(h264Summary(Buffer.from([0x65, 1])), { key: true, params: false }, 'IDR single NAL')
  tt.same(h264Summary(Buffer.from([0x7c, 0x85, 1])), { key: true, params: false }, 'FU-A start of an IDR')
  tt.same(h264Summary(Buffer.from([0x7c, 0x05, 1])), { key: false, params: false }, 'FU-A continuation of an IDR')
  tt.same(h264Summary(Buffer.from([0x7c, 0x81, 1])), { key: false, params: false }, 'FU-A start of a non-IDR slice')
  tt.same(h264Summary(Buffer.from([0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1, 0, 2, 0x65, 1])), { key: true, params: true },
    'STAP-A SPS+PPS+IDR')
  tt.same(h265Summary(Buffer.from([19 << 1, 1, 0])), { key: true, params: false }, 'H.265 IDR_W_RADL')
  tt.same(h265Summary(Buffer.from([33 << 1, 1, 0])), { key: false, params: true }, 'H.265 SPS')
  tt.same(h265Summary(Buffer.from([49 << 1, 1, 0x80 | 20, 0])), { key: true, params: false }, 'H.265 FU start of CRA')
})

function pkt (track: number, ts: number, payload: number[], frameStart = true): LivePacket {
  return {
    track,
    data: rtp(0, ts, 1, Buffer.from(payload)),
    rtcp: false,
    seq: 0,
    timestamp: ts,
    frameStart,
    key: false
  }
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
  tt.ok(small.push(pkt(0, 10, [0x65, 1]), { key: true, params: false }).gopStarted,
    'next keyframe starts a valid GOP again')
  tt.ok(small.valid)
  small.clear()
  tt.notOk(small.valid, 'clear() forgets the GOP')
  tt.equal(small.bytes, 0)
  // 'any' mode: every frame start of the key track starts a GOP.
  const any = new GopCache({ mode: 'any', keyTrack: 0, maxBytes: 1000 })
  const a1 = pkt(0, 1, [1])
  tt.ok(any.push(a1, any.summary(a1, null)).gopStarted === false,
    'no payload → no key in any mode when payload is null')
  tt.ok(any.push(a1, any.summary(a1, a1.data.subarray(12))).gopStarted, 'any mode: a frame start is a GOP start')
})

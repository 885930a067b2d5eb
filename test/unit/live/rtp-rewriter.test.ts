/** RTP/RTCP rewriting across upstream epochs (src/live/rtp-rewriter.ts). */
import t from 'tap'
import { TrackRewriter, rtpSeq, rtpSsrc, rtpTimestamp, rtpPayload } from '../../../src/live/rtp-rewriter.js'
import { rtp } from '../../helpers/rtp-packet.js'

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

t.test('TrackRewriter: own SSRC, first epoch keeps numbers, a new epoch continues seq +1 and ts by wall ' +
  'time', async tt => {
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
  tt.same([rtpSeq(p), rtpTimestamp(p)], [2, 5000 + 48000],
    'RTP after an SR-started epoch: seq continues, same ts mapping')
  const bye = Buffer.from([0x81, 203, 0, 1, 0, 0, 0, 10])
  tt.equal(rw.rtcp(bye, 2000), null, 'BYE dropped (the live stream goes on)')
})

t.test('rtpPayload skips CSRCs, extension and padding', async tt => {
  const b = Buffer.from([0xb1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0x65, 0xaa,
    0, 2])
  tt.same(rtpPayload(b), Buffer.from([0x65, 0xaa]))
})

import t from 'tap'
import { packetizeAac } from '../../../src/origin/aac-packetizer.js'
import { packetizeH264, packetizeNal, splitAvcc } from '../../../src/origin/h264-packetizer.js'
import { buildRtpPacket, parseRtpHeader } from '../../../src/origin/rtp.js'
import { buildBye, buildSenderReport, ntpFromMs } from '../../../src/origin/rtcp.js'

function nal (type: number, len: number, fill = 0xab): Buffer {
  const b = Buffer.alloc(len, fill)
  b[0] = 0x60 | type
  return b
}
function avcc (...nals: Buffer[]): Buffer {
  return Buffer.concat(nals.flatMap((n) => { const l = Buffer.alloc(4); l.writeUInt32BE(n.length); return [l, n] }))
}

t.test('single NAL unit packets when they fit', async (t) => {
  const a = nal(1, 1400)
  t.same(packetizeNal(a, 1400), [a], 'exactly 1400 bytes is one packet')
  const sample = avcc(nal(9, 2), nal(6, 20), nal(1, 500))
  const p = packetizeH264(sample, 4)
  t.equal(p.length, 2, 'AUD dropped, SEI and slice sent')
  t.equal(p[0]![0]! & 0x1f, 6)
  t.equal(p[1]!.length, 500)
  t.ok(p.every((x) => (x[0]! & 0x1f) !== 24), 'never STAP-A')
})

t.test('FU-A fragmentation', async (t) => {
  const n = nal(5, 4000)
  for (let i = 1; i < n.length; i++) n[i] = i & 0xff
  const p = packetizeNal(n, 1400)
  t.equal(p.length, Math.ceil((4000 - 1) / 1398))
  p.forEach((x, i) => {
    t.equal(x[0]! & 0x1f, 28, 'FU indicator type 28')
    t.equal(x[0]! & 0xe0, n[0]! & 0xe0, 'NRI and F copied')
    t.equal(x[1]! & 0x1f, 5, 'FU header carries NAL type')
    t.equal((x[1]! & 0x80) !== 0, i === 0, 'S bit only on first')
    t.equal((x[1]! & 0x40) !== 0, i === p.length - 1, 'E bit only on last')
    t.ok(x.length <= 1400)
  })
  const rebuilt = Buffer.concat([n.subarray(0, 1), ...p.map((x) => x.subarray(2))])
  t.same(rebuilt, n, 'fragments reassemble to the NAL')
})

t.test('parameter sets in-band before IDR; marker on last packet of an AU', async (t) => {
  const sps = nal(7, 10); const pps = nal(8, 4)
  const p = packetizeH264(avcc(nal(5, 3000)), 4, 1400, [sps, pps])
  t.same(p[0], sps); t.same(p[1], pps)
  t.equal(p.length, 2 + 3)
  const p2 = packetizeH264(avcc(nal(1, 300)), 4, 1400, [sps, pps])
  t.equal(p2.length, 1, 'non-IDR: no parameter sets')
  // Marker/timestamp: the session marks the last payload of a unit, ts = 90 kHz pts.
  const pts = 12800 * 3 / 25 // 3 frames at 25 fps in a 12800 timescale
  const ts = Math.round((pts / 12800) * 90000)
  t.equal(ts, 10800)
  const pkts = p.map((pl, i) =>
    parseRtpHeader(buildRtpPacket({
      payloadType: 96,
      marker: i === p.length - 1,
      seq: 65535 + i,
      timestamp: ts,
      ssrc: 0x1234
    },
    pl)))
  t.same(pkts.map((x) => x.marker), [false, false, false, false, true])
  t.same(pkts.map((x) => x.seq), [65535, 0, 1, 2, 3], 'seq wraps')
  t.ok(pkts.every((x) => x.timestamp === 10800 && x.payloadType === 96))
  t.same(pkts[2]!.payload, p[2])
})

t.test('2-byte NAL length prefixes', async (t) => {
  const n = nal(1, 30)
  const b = Buffer.concat([Buffer.from([0, 30]), n])
  t.same(splitAvcc(b, 2), [n])
  t.throws(() => splitAvcc(Buffer.from([0, 0, 0, 50, 1, 2]), 4), RangeError)
})

t.test('AAC-hbr AU headers (13-bit size, 3-bit index)', async (t) => {
  const au = Buffer.alloc(371, 7)
  const [p, ...rest] = packetizeAac(au)
  t.equal(rest.length, 0)
  t.equal(p!.readUInt16BE(0), 16, 'AU-headers-length = 16 bits')
  t.equal(p!.readUInt16BE(2) >> 3, 371, 'AU-size')
  t.equal(p!.readUInt16BE(2) & 7, 0, 'AU-index 0')
  t.same(p!.subarray(4), au)
  const big = Buffer.alloc(3000, 1)
  const frags = packetizeAac(big, 1400)
  t.equal(frags.length, 3)
  t.ok(frags.every((f) => f.readUInt16BE(2) >> 3 === 3000), 'fragments carry the whole AU size')
  t.same(Buffer.concat(frags.map((f) => f.subarray(4))), big)
  t.throws(() => packetizeAac(Buffer.alloc(9000)), RangeError)
})

t.test('RTCP sender report', async (t) => {
  const ms = Date.UTC(2024, 0, 1, 0, 0, 0, 500)
  const sr = buildSenderReport({
    ssrc: 0xdeadbeef,
    wallMs: ms,
    rtpTimestamp: 123456,
    packetCount: 10,
    octetCount: 5000,
    cname: 'tg'
  })
  t.equal(sr[0], 0x80); t.equal(sr[1], 200); t.equal(sr.readUInt16BE(2), 6)
  t.equal(sr.readUInt32BE(4), 0xdeadbeef)
  t.equal(sr.readUInt32BE(8), ntpFromMs(ms).sec)
  t.equal(sr.readUInt32BE(8), Math.floor(ms / 1000) + 2208988800)
  t.equal(sr.readUInt32BE(12), 0x80000000, 'half a second')
  t.equal(sr.readUInt32BE(16), 123456)
  t.equal(sr.readUInt32BE(20), 10)
  t.equal(sr.readUInt32BE(24), 5000)
  const sdes = sr.subarray(28)
  t.equal(sdes[1], 202)
  t.equal((sdes.readUInt16BE(2) + 1) * 4, sdes.length, 'SDES length field')
  t.equal(sdes.length % 4, 0)
  t.equal(sdes.toString('latin1', 10, 12), 'tg')
  const bye = buildBye(7)
  t.equal(bye[1], 203); t.equal(bye.readUInt32BE(4), 7)
})

t.test('bench stamp header extension', async (t) => {
  const b = buildRtpPacket({
    payloadType: 96,
    marker: true,
    seq: 1,
    timestamp: 2,
    ssrc: 3,
    stampUs: 1_700_000_000_000_000
  },
  Buffer.from('xy'))
  t.equal(b[0]! & 0x10, 0x10)
  t.equal(b.readBigUInt64BE(16), 1_700_000_000_000_000n)
  t.same(parseRtpHeader(b).payload, Buffer.from('xy'))
})

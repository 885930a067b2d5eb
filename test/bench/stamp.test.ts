/**
 * The bench stamp: the origin's stampNs extension and the bench source's writeStamp read back by the load generator.
 */
import t from 'tap'
import { buildRtpPacket, parseRtpHeader } from '../../src/origin/rtp.js'
import { readStamp, writeStamp, nowNs } from '../../bench/src/stamp.js'

t.test('origin stampNs → readStamp', async t => {
  const ns = process.hrtime.bigint()
  const p = buildRtpPacket({ payloadType: 96, marker: false, seq: 1, timestamp: 2, ssrc: 3, stampNs: ns },
    Buffer.from('payload'))
  t.equal(readStamp(p, 0, p.length), Number(ns))
  t.same(parseRtpHeader(p).payload, Buffer.from('payload'), 'players skip the extension')
  const plain = buildRtpPacket({ payloadType: 96, marker: false, seq: 1, timestamp: 2, ssrc: 3 }, Buffer.alloc(20))
  t.equal(readStamp(plain, 0, plain.length), -1, 'no extension, no stamp')
  const wall = buildRtpPacket({ payloadType: 96, marker: false, seq: 1, timestamp: 2, ssrc: 3, stampUs: 1e15 },
    Buffer.alloc(20))
  t.equal(readStamp(wall, 0, wall.length), -1, 'the older wall-clock µs profile is not read as ns')
})

t.test('writeStamp at an offset; delay on one clock', async t => {
  const b = Buffer.alloc(4 + 12 + 12 + 10)
  b[4] = 0x90
  const ns = process.hrtime.bigint()
  writeStamp(b, 4 + 12, ns)
  const st = readStamp(b, 4, b.length - 4)
  t.equal(st, Number(ns))
  t.ok(nowNs() - st >= 0, 'now is not before the stamp')
})

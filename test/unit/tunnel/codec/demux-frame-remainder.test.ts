/**
 * RtspDemuxer.frameRemainder and the backend read path built on it (ProxySession#backendData,
 * mirrored by backendPath in bench/src/micro.ts): completing a held `$` frame from the head of
 * the next read must give the client exactly the writes the demuxer path gave (same bytes in the
 * same writes, messages in the same places).
 */
import t from 'tap'
import fc from 'fast-check'
import { encodeInterleaved } from '../../../../src/tunnel/codec/interleaved.js'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'
import { backendPath } from '../../../../bench/src/micro.js'

t.test('frameRemainder: bytes to complete a held frame, 0 otherwise', async t => {
  const f = encodeInterleaved(3, Buffer.alloc(100, 7))
  const d = new RtspDemuxer()
  t.equal(d.frameRemainder, 0, 'nothing held')
  d.push(f.subarray(0, 2))
  t.equal(d.frameRemainder, 0, 'header incomplete: unknown')
  d.push(f.subarray(2, 10))
  t.equal(d.frameRemainder, f.length - 10)
  const units = d.push(f.subarray(10))
  t.equal(units.length, 1)
  t.ok(units[0]!.kind === 'frame' && units[0]!.raw.equals(f), 'pushing exactly the remainder yields the frame')
  t.equal(d.buffered, 0)
  t.equal(d.frameRemainder, 0)
  const m = new RtspDemuxer()
  m.push(Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 1\r\n'))
  t.equal(m.frameRemainder, 0, 'a held message')
  const z = new RtspDemuxer()
  z.push(encodeInterleaved(0, Buffer.alloc(0)).subarray(0, 3))
  t.equal(z.frameRemainder, 0, 'a held empty frame header')
})

t.test('the read path writes what the demuxer path wrote, on any cut of any stream', async t => {
  const message = Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 1\r\nContent-Length: 5\r\n\r\nhello')
  const request = Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n')
  const unit = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3000 })).map(([ch, n]) => encodeInterleaved(ch, Buffer.alloc(n, ch + n))),
    fc.constant(message), fc.constant(request), fc.constant(Buffer.from('\r\n')))
  fc.assert(fc.property(fc.array(unit, { maxLength: 30 }),
    fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 40 }), (units, cuts) => {
      const stream = Buffer.concat(units)
      const reads: Buffer[] = []
      for (let o = 0, i = 0; o < stream.length; i++) {
        const n = cuts[i % cuts.length]!
        reads.push(Buffer.from(stream.subarray(o, o + n)))
        o += n
      }
      const run = (carry: boolean): string[] => {
        const d = new RtspDemuxer()
        const log: string[] = []
        for (const r of reads) {
          backendPath(d, r, (a, b) => log.push('w:' + (b === undefined ? a : Buffer.concat([a, b])).toString('hex')),
            carry,
            u => log.push(`${u.kind}:${u.kind === 'error' ? u.reason : u.raw.toString('hex')}`))
        }
        return log
      }
      const before = run(false)
      const after = run(true)
      const frames = (l: string[]): string => l.filter(s => s.startsWith('w:')).map(s => s.slice(2)).join('')
      return JSON.stringify(before) === JSON.stringify(after) &&
      (frames(after).length > 0) === units.some(u => u[0] === 0x24)
    }), { numRuns: 400 })
  t.pass('same writes, same messages')
})

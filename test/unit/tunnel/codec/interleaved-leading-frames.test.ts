/** leadingFrames (codec/interleaved): the proxy's fast path must see exactly the frames the demuxer would. */
import t from 'tap'
import fc from 'fast-check'
import { encodeInterleaved, leadingFrames } from '../../../../src/tunnel/codec/interleaved.js'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'

t.test('whole frames, partial tail, text after frames, empty', async t => {
  const a = encodeInterleaved(0, Buffer.alloc(10, 1))
  const b = encodeInterleaved(1, Buffer.alloc(0))
  t.same(leadingFrames(Buffer.concat([a, b])), { bytes: a.length + b.length, frames: 2 })
  t.same(leadingFrames(Buffer.concat([a, b.subarray(0, 3)])), { bytes: a.length, frames: 1 })
  t.same(leadingFrames(Buffer.concat([a, Buffer.from('RTSP/1.0 200 OK\r\n\r\n')])), { bytes: a.length, frames: 1 })
  t.same(leadingFrames(Buffer.from('\r\n')), { bytes: 0, frames: 0 })
  t.same(leadingFrames(Buffer.alloc(0)), { bytes: 0, frames: 0 })
})

t.test('agrees with the demuxer on any cut of a frame stream', async t => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), { maxLength: 8 }),
    fc.nat(), fc.boolean(),
    (frames, cutAt, text) => {
      let stream = Buffer.concat(frames.map(([ch, p]) => encodeInterleaved(ch, Buffer.from(p))))
      if (text) stream = Buffer.concat([stream, Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n')])
      const chunk = stream.subarray(0, cutAt % (stream.length + 1))
      const lead = leadingFrames(chunk)
      const units = new RtspDemuxer().push(Buffer.from(chunk))
      let n = 0
      let bytes = 0
      for (const u of units) { if (u.kind !== 'frame') break; n++; bytes += u.raw.length }
      return lead.frames === n && lead.bytes === bytes
    }), { numRuns: 500 })
  t.pass('leadingFrames = the demuxer\'s leading frames')
})

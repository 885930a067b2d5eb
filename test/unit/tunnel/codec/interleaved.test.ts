/**
 * The one `$` frame encoder (src/tunnel/codec/interleaved.ts): frames written back to back at any
 * offset read back through the demuxer as written; out-of-range channels and payloads are refused.
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {
  encodeInterleaved, INTERLEAVED_HEADER, leadingFrames, writeInterleaved
} from '../../../../src/tunnel/codec/interleaved.js'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'

t.test('writeInterleaved: header, payload, next offset', async t => {
  const out = Buffer.alloc(12, 0xee)
  t.equal(writeInterleaved(out, 2, 7, Buffer.from([1, 2, 3])), 9)
  t.same(out, Buffer.from([0xee, 0xee, 0x24, 7, 0, 3, 1, 2, 3, 0xee, 0xee, 0xee]), 'bytes outside the frame untouched')
  t.same(encodeInterleaved(255, Buffer.alloc(0)), Buffer.from([0x24, 255, 0, 0]))
  t.equal(encodeInterleaved(1, Buffer.alloc(65535)).readUInt16BE(2), 65535)
  for (const ch of [-1, 256, 1.5, NaN]) {
    t.throws(() => encodeInterleaved(ch, Buffer.alloc(1)), RangeError, `channel ${ch}`)
  }
  t.throws(() => encodeInterleaved(0, Buffer.alloc(65536)), RangeError, 'payload over 65535')
})

t.test('frames written back to back read back whole, in order', async t => {
  const frame = fc.record({ channel: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 2000 }) })
  fc.assert(fc.property(fc.array(frame, { maxLength: 20 }), fc.nat(8), (frames, lead) => {
    const size = frames.reduce((n, f) => n + INTERLEAVED_HEADER + f.payload.length, 0)
    const buf = Buffer.alloc(lead + size)
    let off = lead
    for (const f of frames) off = writeInterleaved(buf, off, f.channel, Buffer.from(f.payload))
    assert.equal(off, lead + size)
    const body = buf.subarray(lead)
    assert.deepEqual(leadingFrames(body), { bytes: size, frames: frames.length })
    const units = new RtspDemuxer().push(body)
    const read = units.map(u => u.kind === 'frame' ? [u.channel, [...u.payload]] : u.kind)
    assert.deepEqual(read, frames.map(f => [f.channel, [...f.payload]]))
  }), { numRuns: 300 })
  t.pass('300 runs of frames')
})

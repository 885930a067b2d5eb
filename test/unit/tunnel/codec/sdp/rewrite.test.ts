/**
 * Byte-exact SDP edits (src/tunnel/codec/sdp/rewrite.ts): only the matched bytes change, whatever
 * the line endings and non-ASCII bytes around them, on bodies up to the RTSP body limit (a size
 * cut-off once let a backend address through), and an unchanged body is the same Buffer.
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { editSdp, maskSdpAddress, rewriteSdp } from '../../../../../src/tunnel/codec/sdp/rewrite.js'
import { DEFAULT_DEMUX_LIMITS } from '../../../../../src/tunnel/codec/demux.js'

const toGw = (url: string): string => url.replace('rtsp://10.0.0.5:8554/', 'rtsp://gw/')

t.test('editSdp: the same Buffer when nothing changes, only the matches otherwise', async t => {
  const body = Buffer.from('v=0\r\na=x:1\na=x:2\r\n\xff\r\n', 'latin1')
  t.equal(editSdp(body, /x:(\d)/g, m => m[0]), body, 'every match kept: the same Buffer')
  t.equal(editSdp(Buffer.alloc(0), /x/g, () => 'y').length, 0)
  const out = editSdp(body, /x:(\d)/g, m => m[1] === '2' ? 'x:22' : m[0])
  t.same(out, Buffer.from('v=0\r\na=x:1\na=x:22\r\n\xff\r\n', 'latin1'), 'one byte more, the 0xff byte kept')
})

t.test('rewriteSdp and maskSdpAddress keep every other byte', async t => {
  const body = Buffer.from('v=0\no=- 1 1 IN IP4 10.0.0.5\r\nc=IN  IP4\t10.0.0.5/127\r' +
    'a=control:rtsp://10.0.0.5:8554/x \r\n' +
    'a=control:trackID=1\na=x-note:rtsp://10.0.0.5:8554/y \xe9\n', 'latin1')
  const text = body.toString('latin1')
  t.equal(rewriteSdp(body, toGw).toString('latin1'),
    text.replace('a=control:rtsp://10.0.0.5:8554/x', 'a=control:rtsp://gw/x'),
    'only the absolute control; its trailing space, other lines and endings kept')
  t.equal(maskSdpAddress(body, '10.0.0.5').toString('latin1'),
    text.replace('IN IP4 10.0.0.5\r', 'IN IP4 0.0.0.0\r').replace('IN  IP4\t10.0.0.5/', 'IN  IP4\t0.0.0.0/'),
    'o= and c= only')
  t.equal(maskSdpAddress(Buffer.from('o=- 1 1 IN IP6 FE80::1\r\n'), '[fe80::1]').toString(), 'o=- 1 1 IN IP6 ::\r\n',
    'IPv6, any case, brackets')
  t.equal(maskSdpAddress(body, ''), body)
  t.equal(maskSdpAddress(body, '10.0.0.6'), body, 'another address: the same Buffer')
})

t.test('bodies up to the RTSP body limit: the address at the very end is still masked and mapped', async t => {
  const limit = DEFAULT_DEMUX_LIMITS.maxBodyBytes
  const tail = 'o=- 1 1 IN IP4 10.0.0.5\r\na=control:rtsp://10.0.0.5:8554/live\r\n'
  const filler = 'a=x-pad:' + 'p'.repeat(100) + '\r\n'
  const head = 'v=0\r\n' + filler.repeat(Math.floor((limit - tail.length - 5) / filler.length))
  const body = Buffer.from(head + 'a'.repeat(limit - head.length - tail.length - 2) + '\r\n' + tail, 'latin1')
  t.equal(body.length, limit)
  const masked = maskSdpAddress(body, '10.0.0.5')
  t.equal(masked.length, limit - 1, '10.0.0.5 → 0.0.0.0')
  t.notOk(masked.includes('10.0.0.5 '), 'no address left in o=')
  const mapped = rewriteSdp(masked, toGw)
  t.ok(mapped.subarray(-40).toString().endsWith('a=control:rtsp://gw/live\r\n'))
  t.notOk(mapped.includes('10.0.0.5'), 'nothing of the backend left')
  t.same(mapped.subarray(0, head.length), body.subarray(0, head.length), 'the megabyte before it untouched')
})

t.test('random bodies: an identity edit is the same Buffer; a mask changes exactly the masked addresses', async t => {
  const line = fc.oneof(
    fc.stringMatching(/^[\x20-\x7e\x80-\xff]{0,40}$/),
    fc.constantFrom('o=- 1 1 IN IP4 10.0.0.5', 'c=IN IP4 10.0.0.5', 'c=IN IP4 10.0.0.50',
      'a=control:rtsp://10.0.0.5:8554/a', 'a=control:*')
  )
  const eols = fc.array(fc.constantFrom('\r\n', '\n', '\r'), { minLength: 41, maxLength: 41 })
  fc.assert(fc.property(fc.array(line, { maxLength: 40 }), eols, (lines, eols) => {
    const text = lines.map((l, i) => l + eols[i]!).join('')
    const body = Buffer.from(text, 'latin1')
    assert.equal(rewriteSdp(body, u => u), body)
    assert.equal(maskSdpAddress(body, '192.0.2.1'), body)
    const masked = maskSdpAddress(body, '10.0.0.5').toString('latin1')
    const mask = (l: string): string => /^[oc]=/.test(l) ? l.replace(/IN IP4 10\.0\.0\.5$/, 'IN IP4 0.0.0.0') : l
    const expected = lines.map((l, i) => mask(l) + eols[i]!).join('')
    assert.equal(masked, expected)
  }), { numRuns: 500 })
  t.pass('500 bodies')
})

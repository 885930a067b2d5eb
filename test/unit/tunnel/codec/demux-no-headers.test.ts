// Messages with no header lines at all (legal RTSP/1.0 syntax): the start line must not keep the
// CR of its CRLF. A gateway-originated 400 without CSeq, or a backend's bare reply, is one.
import t from 'tap'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'

t.test('a response and a request with no headers parse, whole or split at every offset', async t => {
  const bytes = Buffer.from('RTSP/1.0 400 Bad Request\r\n\r\nOPTIONS * RTSP/1.0\r\n\r\nRTSP/1.0 200 OK\n\n')
  const whole = new RtspDemuxer().push(bytes)
  t.same(whole.map(u => u.kind), ['response', 'request', 'response'])
  t.match(whole[0], { kind: 'response', status: 400, reason: 'Bad Request', headers: [] })
  t.match(whole[1], { kind: 'request', method: 'OPTIONS', uri: '*', version: 'RTSP/1.0', headers: [] })
  t.match(whole[2], { kind: 'response', status: 200, reason: 'OK' })
  for (let i = 1; i < bytes.length; i++) {
    const d = new RtspDemuxer()
    const units = [...d.push(bytes.subarray(0, i)), ...d.push(bytes.subarray(i))]
    t.same(units.map(u => u.kind), ['response', 'request', 'response'], `split at ${i}`)
  }
})

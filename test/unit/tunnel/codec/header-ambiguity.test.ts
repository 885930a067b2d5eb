/**
 * Requests a substring-searching backend (live555) would read another way than the gateway:
 * refused; what real clients send: passed (the captured requests of ffmpeg, GStreamer, openRTSP).
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ambiguity } from '../../../../src/tunnel/codec/header-ambiguity.js'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'
import { Base64StreamDecoder } from '../../../../src/tunnel/codec/base64-stream.js'
import { parseHttpHead } from '../../../../src/tunnel/codec/http-head.js'
import { loadTcpConnections } from '../../../helpers/pcap.js'
import type { Header } from '../../../../src/tunnel/codec/rtsp-message.js'

const smuggle = 'Transport: RTP/AVP;unicast;client_port=9000-9001'

t.test('header names hidden in other text are refused', async t => {
  const cases: Array<[string, string, Header[]]> = [
    ['in a value', 'rtsp://gw/demo/trackID=1',
      [['CSeq', '3'], ['User-Agent', `x ${smuggle}`], ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']]],
    ['in a header name', 'rtsp://gw/demo/trackID=1',
      [['CSeq', '3'], ['X-Transport', 'RTP/AVP;unicast;client_port=9000-9001']]],
    ['in the query', `rtsp://gw/demo?${smuggle.replace(/ /g, '')}`, [['CSeq', '3']]],
    ['in the path', '/demo/Transport:x', [['CSeq', '3']]],
    ['CSeq in a value', 'rtsp://gw/demo', [['CSeq', '3'], ['Accept', 'application/sdp, CSeq: 9']]],
    ['Content-Length in a value', 'rtsp://gw/demo', [['CSeq', '3'], ['X-Foo', 'a Content-Length: 99']]],
    ['Session in a digest', 'rtsp://gw/demo',
      [['CSeq', '3'], ['Authorization', 'Digest username="a Session: 1", uri="rtsp://gw/demo"']]]
  ]
  for (const [name, uri, headers] of cases) t.type(ambiguity('SETUP', uri, headers), 'string', name)
  t.match(ambiguity('PLAY', 'rtsp://gw/demo', [['CSeq', '1'], ['CSeq', '2']]), /twice/, 'a singleton twice')
  t.match(ambiguity('SETUP', 'rtsp://gw/demo', [['Transport', 'a'], ['transport', 'b']]), /twice/,
    'Transport twice, any case')
})

t.test('what clients really send passes', async t => {
  const ok: Array<[string, Header[]]> = [
    ['rtsp://localhost:8554/demo',
      [['CSeq', '1'], ['User-Agent', 'Lavf59.27.100'],
        ['Authorization',
          'Digest username="u", realm="r", nonce="n", uri="rtsp://localhost:8554/demo", response="x"']]],
    ['rtsp://cdn-transport:554/x', [['CSeq', '1'], ['Referer', 'rtsp://my-session:80/x']]],
    ['rtsp://gw/demo/trackID=1',
      [['CSeq', '4'], ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1'], ['x-Dynamic-Rate', '1'],
        ['x-transport-options', 'late-tolerance=2.384'], ['Accept-Ranges', 'npt, clock'], ['Accept-Language', 'en']]]
  ]
  for (const [uri, headers] of ok) t.equal(ambiguity('SETUP', uri, headers), null, uri)
  const dir = fileURLToPath(new URL('../../../fixtures/captures/', import.meta.url))
  let requests = 0
  for (const f of readdirSync(dir).filter(n => n.endsWith('.pcap'))) {
    for (const c of loadTcpConnections(dir + f)) {
      const head = parseHttpHead(c.clientToServer)
      if (head.state !== 'ok' || head.head.method !== 'POST') continue
      const rtsp = new Base64StreamDecoder().push(c.clientToServer.subarray(head.head.headLength)).data
      for (const u of new RtspDemuxer().push(rtsp)) {
        if (u.kind !== 'request') continue
        requests++
        t.equal(ambiguity(u.method, u.uri, u.headers), null, `${f}: ${u.method}`)
      }
    }
  }
  t.ok(requests > 10, `${requests} captured requests checked`)
})

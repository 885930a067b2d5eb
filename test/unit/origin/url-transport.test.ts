import t from 'tap'
import { parseNptRange, parseTarget } from '../../../src/origin/rtsp-url.js'
import { chooseTransport, formatTransport } from '../../../src/tunnel/codec/transport.js'

t.test('request targets', async (t) => {
  t.same(parseTarget('rtsp://h:554/demo'), { name: 'demo', live: false, base: 'rtsp://h:554/demo' })
  t.same(parseTarget('rtsp://h/demo.mp4/'), { name: 'demo.mp4', live: false, base: 'rtsp://h/demo.mp4' })
  t.same(parseTarget('rtsp://h/live/demo/trackID=2'), { name: 'demo', live: true, track: 2, base: 'rtsp://h/live/demo' })
  t.same(parseTarget('/demo?x=1'), { name: 'demo', live: false, base: '/demo' })
  t.equal(parseTarget('*'), undefined)
  t.equal(parseTarget('rtsp://h/%zz'), undefined)
})

t.test('npt ranges', async (t) => {
  t.same(parseNptRange('npt=5-'), { start: 5 })
  t.same(parseNptRange('npt=0.000-'), { start: 0 })
  t.same(parseNptRange('npt=1.5-10'), { start: 1.5, end: 10 })
  t.same(parseNptRange('npt=0:01:02.5-'), { start: 62.5 })
  t.same(parseNptRange('npt=now-'), {})
  t.same(parseNptRange('npt=-4'), { start: 0, end: 4 })
  for (const bad of ['smpte=0:00:01-', 'npt=abc-', 'npt=5-2', 'npt=', 'clock=19961108T143720Z-']) t.equal(parseNptRange(bad), undefined, bad)
})

t.test('transports', async (t) => {
  t.same(chooseTransport('RTP/AVP/TCP;unicast;interleaved=4-5'), { lower: 'tcp', interleaved: [4, 5], raw: 'RTP/AVP/TCP;unicast;interleaved=4-5' })
  t.match(chooseTransport('RTP/AVP/TCP;unicast'), { lower: 'tcp' })
  t.match(chooseTransport('RTP/AVP;multicast, RTP/AVP;unicast;client_port=5000-5001'), { lower: 'udp', clientPort: [5000, 5001] })
  t.equal(chooseTransport('RTP/AVP;unicast'), undefined, 'UDP without client_port')
  t.equal(chooseTransport('RTP/AVP/TCP;unicast;mode=record'), undefined)
  t.equal(chooseTransport('RAW/RAW/UDP;unicast'), undefined)
  t.equal(formatTransport({ kind: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 0xab), 'RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=000000AB;mode="PLAY"')
  t.equal(formatTransport({ kind: 'udp', host: '1.2.3.4', rtpPort: 5000, rtcpPort: 5001 }, 1, [6000, 6001]), 'RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=00000001;mode="PLAY"')
})

import t from 'tap'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'
import {
  getHeader, serializeMessage, type RtspRequest, type RtspResponse
} from '../../../../src/tunnel/codec/rtsp-message.js'
import {
  findBackendAuthorityLeak,
  rewriteRequestUrls,
  rewriteResponseUrls,
  rewriteRtpInfo,
  UrlMapper
} from '../../../../src/tunnel/codec/url-rewrite.js'
import { rewriteSdp } from '../../../../src/tunnel/codec/sdp/rewrite.js'

function parseOne (text: string): RtspResponse | RtspRequest {
  const units = new RtspDemuxer().push(Buffer.from(text, 'latin1'))
  const u = units[0]
  if (units.length !== 1 || u === undefined ||
    (u.kind !== 'response' &&
      u.kind !== 'request')) throw new Error(`expected one message, got ${JSON.stringify(units)}`)
  return u
}

t.test('UrlMapper', async (tt) => {
  const m = new UrlMapper({ publicBase: 'rtsp://gw.example.net/live', backendBase: 'rtsp://10.0.0.5:8554/origin' })
  const toBackend: Array<[string, string]> = [
    ['rtsp://gw.example.net/live/cam1', 'rtsp://10.0.0.5:8554/origin/cam1'],
    ['rtsp://gw.example.net:80/live/cam1/trackID=1', 'rtsp://10.0.0.5:8554/origin/cam1/trackID=1'],
    ['rtsp://127.0.0.1/live/cam1?token=a/b&x=1', 'rtsp://10.0.0.5:8554/origin/cam1?token=a/b&x=1'],
    ['RTSP://GW/live', 'rtsp://10.0.0.5:8554/origin'],
    ['rtsp://gw/live/', 'rtsp://10.0.0.5:8554/origin/'],
    ['rtsp://user:pw@gw/live/x', 'rtsp://10.0.0.5:8554/origin/x'],
    ['rtsp://gw/lively/x', 'rtsp://gw/lively/x'],
    ['rtsp://gw/other/x', 'rtsp://gw/other/x'],
    ['*', '*'],
    ['trackID=1', 'trackID=1'],
    ['http://gw/live/x', 'http://gw/live/x']
  ]
  for (const [a, b] of toBackend) tt.equal(m.toBackend(a), b, `toBackend ${a}`)
  const toPublic: Array<[string, string]> = [
    ['rtsp://10.0.0.5:8554/origin/cam1/', 'rtsp://gw.example.net/live/cam1/'],
    ['rtsp://10.0.0.5:8554/origin/cam1/trackID=2?x=1', 'rtsp://gw.example.net/live/cam1/trackID=2?x=1'],
    ['rtsp://10.0.0.5:8554/origin', 'rtsp://gw.example.net/live'],
    ['rtsp://10.0.0.5/origin/cam1', 'rtsp://10.0.0.5/origin/cam1'],
    ['rtsp://10.0.0.6:8554/origin/cam1', 'rtsp://10.0.0.6:8554/origin/cam1'],
    ['rtsp://10.0.0.5:8554/originals/x', 'rtsp://10.0.0.5:8554/originals/x'],
    ['stream=0', 'stream=0'],
    ['*', '*']
  ]
  for (const [a, b] of toPublic) tt.equal(m.toPublic(a), b, `toPublic ${a}`)

  const d = new UrlMapper({ publicBase: 'rtsp://gw:80/', backendBase: 'rtsp://Backend.Local:554' })
  tt.equal(d.toPublic('rtsp://backend.local/test.mkv/track1'), 'rtsp://gw:80/test.mkv/track1',
    'port-less URL matches backend port 554, host case-insensitive')
  tt.equal(d.toPublic('rtsp://BACKEND.LOCAL:554/x'), 'rtsp://gw:80/x')
  tt.equal(d.toBackend('rtsp://anything/x/y'), 'rtsp://Backend.Local:554/x/y', 'empty public prefix maps everything')
  tt.equal(d.toBackend('rtsp://anything'), 'rtsp://Backend.Local:554')

  const alias = new UrlMapper({
    publicBase: 'rtsp://gw/',
    backendBase: 'rtsp://origin-1:8554/',
    backendAliases: ['127.0.0.1:8554', '[::1]:8554']
  })
  tt.equal(alias.toPublic('rtsp://127.0.0.1:8554/live/'), 'rtsp://gw/live/', 'backendAliases')
  tt.equal(alias.toPublic('rtsp://[::1]:8554/live/'), 'rtsp://gw/live/')
  tt.equal(alias.toPublic('rtsp://127.0.0.1/live/'), 'rtsp://127.0.0.1/live/')
  tt.throws(() => new UrlMapper({ publicBase: 'http://gw/', backendBase: 'rtsp://b/' }))
  tt.throws(() => new UrlMapper({ publicBase: 'rtsp://gw/?x', backendBase: 'rtsp://b/' }))
  tt.equal(alias.backendAuthority, 'origin-1:8554')
})

// GStreamer's DESCRIBE reply (gst-to-gst-rtsp-server.txt), with its SDP.
const GST_SDP = [
  'v=0', 'o=- 6457197416522941833 1 IN IP4 127.0.0.1', 's=Session streamed with GStreamer', 'i=rtsp-server', 't=0 0',
  'a=tool:GStreamer', 'a=type:broadcast', 'a=control:*', 'a=range:npt=now-', 'm=video 0 RTP/AVP 96', 'c=IN IP4 0.0.0.0',
  'b=AS:1024', 'a=rtpmap:96 H264/90000', 'a=framerate:25',
  'a=fmtp:96 ' +
    'packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lwFqDAwNSgAAAAwCAAAAZR4sXUA==,aM48gA==;profile-level-id=42c' +
    '01e;level-asymmetry-allowed=1',
  'a=control:stream=0', 'a=ts-refclk:local', 'a=mediaclk:sender', 'a=ssrc:913265807 cname:user111088836@host-cfe3b853',
  'm=audio 0 RTP/AVP 97', 'c=IN IP4 0.0.0.0', 'a=rtpmap:97 MPEG4-GENERIC/48000/2',
  'a=fmtp:97 ' +
    'streamtype=5;profile-level-id=2;mode=AAC-hbr;config=119056e500;sizelength=13;indexlength=3;indexdeltalength=3',
  'a=control:stream=1', 'a=ts-refclk:local', 'a=mediaclk:sender', 'a=ssrc:3136616806 cname:user111088836@host-cfe3b853',
  ''
].join('\r\n')

t.test('GStreamer DESCRIBE reply from the capture', async (tt) => {
  tt.equal(Buffer.byteLength(GST_SDP), 834, 'same length as captured')
  const text = 'RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Base: ' +
    'rtsp://127.0.0.1:8554/live/\r\n' +
    'Server: GStreamer RTSP server\r\nDate: Tue, 24 Nov 2026 23:22:55 GMT\r\nContent-Length: 834\r\n\r\n' + GST_SDP
  const msg = parseOne(text) as RtspResponse
  const m = new UrlMapper({ publicBase: 'rtsp://cams.example.org/pub', backendBase: 'rtsp://127.0.0.1:8554/' })
  rewriteResponseUrls(msg, (u) => m.toPublic(u))
  tt.equal(getHeader(msg, 'content-base'), 'rtsp://cams.example.org/pub/live/')
  tt.equal(msg.body.toString(), GST_SDP,
    'relative controls (*, stream=0, stream=1) untouched; base64 "==" in fmtp untouched')
  const out = serializeMessage(msg)
  tt.notOk(findBackendAuthorityLeak(out, '127.0.0.1:8554'))
  // The RTP-Info of its PLAY reply
  const rtpInfo = 'url=rtsp://127.0.0.1:8554/live/stream=0;seq=3007;rtptime=1220112134, ' +
    'url=rtsp://127.0.0.1:8554/live/stream=1;seq=17549;rtptime=2191616769'
  tt.equal(rewriteRtpInfo(rtpInfo, (u) => m.toPublic(u)),
    'url=rtsp://cams.example.org/pub/live/stream=0;seq=3007;rtptime=1220112134, ' +
      'url=rtsp://cams.example.org/pub/live/stream=1;seq=17549;rtptime=2191616769')
})

t.test('live555-style replies with the backend IP:port in URLs', async (tt) => {
  const m = new UrlMapper({ publicBase: 'rtsp://gw.example.net/vod', backendBase: 'rtsp://192.0.2.2:8554/' })
  const map = (u: string): string => m.toPublic(u)
  const sdp = 'v=0\r\no=- 1795562492874981 1 IN IP4 192.0.2.2\r\ns=x\r\nt=0 0\r\n' +
    'a=control:rtsp://192.0.2.2:8554/test.mkv/\r\n' +
    'm=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=control:rtsp://192.0.2.2:8554/test.mkv/track1\r\n' +
    'm=audio 0 RTP/AVP 97\na=control:  rtsp://192.0.2.2:8554/test.mkv/track2  \n'
  const text = 'RTSP/1.0 200 OK\r\nCSeq: 3\r\nDate: Tue, Nov 24 2026 23:21:32 GMT\r\nContent-Base: ' +
    'rtsp://192.0.2.2:8554/test.mkv/\r\n' +
    `Content-Location: rtsp://192.0.2.2:8554/test.mkv\r\nContent-Type: application/sdp; charset=utf-8\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`
  const msg = parseOne(text) as RtspResponse
  rewriteResponseUrls(msg, map)
  const out = serializeMessage(msg)
  tt.notOk(findBackendAuthorityLeak(out, '192.0.2.2:8554'), 'no backend authority left')
  tt.ok(findBackendAuthorityLeak(Buffer.from(text), '192.0.2.2:8554'), 'the helper does find it in the original')
  const body = msg.body.toString()
  tt.match(body, /a=control:rtsp:\/\/gw\.example\.net\/vod\/test\.mkv\/\r\n/)
  tt.match(body, /a=control:rtsp:\/\/gw\.example\.net\/vod\/test\.mkv\/track1\r\n/)
  tt.match(body, /\na=control: {2}rtsp:\/\/gw\.example\.net\/vod\/test\.mkv\/track2 {2}\n$/, 'bare LF and spacing kept')
  tt.match(body, /IN IP4 192\.0\.2\.2\r\n/, 'o= line is not a URL: untouched (only the IP, not the authority)')
  tt.equal(getHeader(msg, 'content-length'), String(msg.body.length))
  const again = parseOne(out.toString('latin1')) as RtspResponse
  tt.equal(again.body.length, msg.body.length, 'serialized message re-parses with the right Content-Length')
  tt.equal(getHeader(again, 'content-location'), 'rtsp://gw.example.net/vod/test.mkv')

  const play = parseOne('RTSP/1.0 200 OK\r\nCSeq: 6\r\nRange: npt=0.000-3.000\r\nSession: 9A3F68D6\r\n' +
    'RTP-Info: ' +
      'url=rtsp://192.0.2.2:8554/test.mkv/track1;seq=10177;rtptime=4060558570,url=rtsp://192.0.2.2:8554/test.mkv/trac' +
      'k2;seq=36513;rtptime=1449509861\r\n\r\n') as RtspResponse
  rewriteResponseUrls(play, map)
  tt.equal(getHeader(play, 'rtp-info'),
    'url=rtsp://gw.example.net/vod/test.mkv/track1;seq=10177;rtptime=4060558570,url=rtsp://gw.example.net/vod/test.mk' +
    'v/track2;seq=36513;rtptime=1449509861')
  const redirect =
    parseOne('RTSP/1.0 302 Found\r\nCSeq: 9\r\nLocation: rtsp://192.0.2.2:8554/other.mkv\r\n\r\n') as RtspResponse
  rewriteResponseUrls(redirect, map)
  tt.equal(getHeader(redirect, 'location'), 'rtsp://gw.example.net/vod/other.mkv')
  // live555 writes port-less URLs when it listens on 554
  const m554 = new UrlMapper({ publicBase: 'rtsp://gw/', backendBase: 'rtsp://192.0.2.2:554/' })
  const r = parseOne('RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Base: rtsp://192.0.2.2/test.mkv/\r\n\r\n') as RtspResponse
  rewriteResponseUrls(r, (u) => m554.toPublic(u))
  tt.equal(getHeader(r, 'content-base'), 'rtsp://gw/test.mkv/')
  tt.notOk(findBackendAuthorityLeak(serializeMessage(r), '192.0.2.2:554'))
  tt.ok(findBackendAuthorityLeak(Buffer.from('Content-Base: rtsp://192.0.2.2/x'), '192.0.2.2:554'),
    'port-less form detected for port 554')
  tt.notOk(findBackendAuthorityLeak(Buffer.from('Content-Base: rtsp://192.0.2.20/x'), '192.0.2.2:554'))
})

t.test('rewriteRtpInfo table', async (tt) => {
  const map = (u: string): string => u.replace('rtsp://b:8554/', 'rtsp://gw/')
  const cases: Array<[string, string]> = [
    ['url=rtsp://b:8554/a/track1;seq=1;rtptime=2', 'url=rtsp://gw/a/track1;seq=1;rtptime=2'],
    ['url=rtsp://b:8554/a/track1;seq=1, url=rtsp://b:8554/a/track2;seq=2',
      'url=rtsp://gw/a/track1;seq=1, url=rtsp://gw/a/track2;seq=2'],
    ['url=rtsp://b:8554/a;jsessionid=9/track1;seq=1', 'url=rtsp://gw/a;jsessionid=9/track1;seq=1'],
    ['url=rtsp://b:8554/a/track1', 'url=rtsp://gw/a/track1'],
    ['url="rtsp://b:8554/foo/audio" ssrc=0A13C760:seq=45102;rtptime=12345678, url="rtsp://b:8554/foo/video" ' +
      'ssrc=9A9DE123:seq=30211;rtptime=29567112',
    'url="rtsp://gw/foo/audio" ssrc=0A13C760:seq=45102;rtptime=12345678, url="rtsp://gw/foo/video" ' +
        'ssrc=9A9DE123:seq=30211;rtptime=29567112'],
    ['URL=rtsp://b:8554/x;seq=1', 'URL=rtsp://gw/x;seq=1'],
    ['url=trackID=1;seq=1', 'url=trackID=1;seq=1'],
    ['seq=1;rtptime=2', 'seq=1;rtptime=2']
  ]
  for (const [a, b] of cases) tt.equal(rewriteRtpInfo(a, map), b, a)
})

t.test('rewriteSdp and rewriteRequestUrls', async (tt) => {
  const map = (u: string): string => u.replace('rtsp://b/', 'rtsp://gw/')
  const sdp = Buffer.from('v=0\r\na=control:rtsp://b/x\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=1\r\n' +
    'a=x-control:rtsp://b/y\r\n')
  tt.equal(rewriteSdp(sdp, map).toString(),
    'v=0\r\na=control:rtsp://gw/x\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=1\r\na=x-control:rtsp://b/y\r\n')
  const same = Buffer.from('v=0\r\na=control:*\r\n')
  tt.equal(rewriteSdp(same, map), same, 'unchanged body is returned as is')
  tt.equal(rewriteSdp(Buffer.from('a=control:rtsp://b/x'), map).toString(), 'a=control:rtsp://gw/x', 'no final newline')
  const m = new UrlMapper({ publicBase: 'rtsp://gw/live', backendBase: 'rtsp://10.0.0.5:8554/' })
  const req = parseOne('SETUP rtsp://gw/live/cam1/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n' +
    'Authorization: Digest username="u", realm="r", nonce="n", uri="rtsp://gw/live/cam1/trackID=1", response="x"\r\n' +
      '\r\n') as RtspRequest
  const auth = getHeader(req, 'authorization')
  rewriteRequestUrls(req, (u) => m.toBackend(u))
  tt.equal(req.uri, 'rtsp://10.0.0.5:8554/cam1/trackID=1')
  tt.equal(getHeader(req, 'authorization'), auth, 'Authorization untouched')
  const star = parseOne('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n') as RtspRequest
  rewriteRequestUrls(star, (u) => m.toBackend(u))
  tt.equal(star.uri, '*')
  // openRTSP: OPTIONS with :80, SETUP without port — both map onto the same backend path
  tt.equal(m.toBackend('rtsp://127.0.0.1:80/live/test.mkv'), 'rtsp://10.0.0.5:8554/test.mkv')
  tt.equal(m.toBackend('rtsp://127.0.0.1/live/test.mkv/track1'), 'rtsp://10.0.0.5:8554/test.mkv/track1')
})

/** SDP live verdicts, controls, key mode and layout (src/tunnel/codec/sdp/parse.ts) as the live fan-out reads them. */
import t from 'tap'
import {
  keyModeOf, parseSdp, playRangeIsLive, resolveControl, sameLayout, sdpVerdict
} from '../../../../../src/tunnel/codec/sdp/parse.js'

const ORIGIN_LIVE = ['v=0', 'o=- 1 1 IN IP4 10.0.0.5', 's=demo', 'c=IN IP4 0.0.0.0', 't=0 0', 'a=control:*',
  'a=range:npt=now-', 'a=type:broadcast',
  'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=control:trackID=1', 'm=audio 0 RTP/AVP 97',
  'a=rtpmap:97 mpeg4-generic/48000/2', 'a=control:trackID=2', ''].join('\r\n')

t.test('SDP: tracks, verdicts, controls, key mode, layout', async tt => {
  const s = parseSdp(ORIGIN_LIVE)
  tt.same(s.tracks.map(x => [x.media, x.payloadType, x.codec, x.clockRate, x.control]),
    [['video', 96, 'h264', 90000, 'trackID=1'], ['audio', 97, 'mpeg4-generic', 48000, 'trackID=2']])
  tt.equal(s.sessionControl, '*')
  tt.equal(sdpVerdict(s), 'live', 'npt=now- / broadcast: live')
  tt.equal(sdpVerdict(parseSdp('v=0\r\na=range:npt=0-12.000\r\nm=video 0 RTP/AVP 96\r\n')), 'vod', 'finite range: VOD')
  tt.equal(sdpVerdict(parseSdp('v=0\r\na=range:npt=0-\r\nm=video 0 RTP/AVP 96\r\n')), 'unknown',
    'open range: undecided until PLAY')
  tt.equal(sdpVerdict(parseSdp('v=0\r\nm=video 0 RTP/AVP 96\r\n')), 'unknown', 'no range: undecided')
  tt.ok(playRangeIsLive('npt=now-'))
  tt.notOk(playRangeIsLive('npt=0.000-12.000'))
  tt.notOk(playRangeIsLive(undefined))
  tt.equal(resolveControl('rtsp://h/live/demo/', 'trackID=1'), 'rtsp://h/live/demo/trackID=1')
  tt.equal(resolveControl('rtsp://h/live/demo', 'trackID=1'), 'rtsp://h/live/demo/trackID=1')
  tt.equal(resolveControl('rtsp://h/live/demo/', '*'), 'rtsp://h/live/demo/')
  tt.equal(resolveControl('rtsp://h/live/demo/', 'rtsp://x/y'), 'rtsp://x/y')
  tt.equal(resolveControl('rtsp://h:1/live/', '/abs/track'), 'rtsp://h:1/abs/track')
  tt.same(keyModeOf(s), { mode: 'h264', keyTrack: 0 })
  tt.same(keyModeOf(parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\n')), { mode: 'any', keyTrack: 0 },
    'audio only: any mode; PCMU static clock')
  tt.equal(parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\n').tracks[0]!.clockRate, 8000)
  tt.ok(sameLayout(s, parseSdp(ORIGIN_LIVE)))
  tt.notOk(sameLayout(s, parseSdp(ORIGIN_LIVE.replace('H264/90000', 'H265/90000'))), 'other codec: other layout')
})

/**
 * browserSdp (src/tunnel/codec/sdp/browser.ts): the 5-byte AAC config FFmpeg-made media carries
 * (core + explicit "no SBR" extension, as in the reference captures of live555 and gst-rtsp-server)
 * becomes its 2-byte core for media-stream-library; every other config and line is left alone.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { browserSdp, browserSdpMessage, coreAacConfig } from '../../../../../src/tunnel/codec/sdp/browser.js'
import { makeResponse, serializeMessage } from '../../../../../src/tunnel/codec/rtsp-message.js'
import { RtspDemuxer } from '../../../../../src/tunnel/codec/demux.js'

t.test('coreAacConfig', async t => {
  t.equal(coreAacConfig('119056e500'), '1190', 'AAC-LC 48 kHz stereo + sync 0x2B7/SBR/absent → 1190')
  t.equal(coreAacConfig('119056E500'), '1190', 'upper-case hex')
  t.equal(coreAacConfig('121056e500'), '1210', 'AAC-LC 44.1 kHz')
  t.equal(coreAacConfig('1190'), null, 'already 2 bytes')
  t.equal(coreAacConfig('119056e580'), null, 'sbrPresentFlag set (HE-AAC): kept')
  t.equal(coreAacConfig('2b9256e500'), null, 'object type 5 (SBR) core: kept')
  t.equal(coreAacConfig('119056e5004c'), null, 'more after the extension: kept')
  t.equal(coreAacConfig('1190aaaa00'), null, 'not the 0x2B7 sync: kept')
  t.equal(coreAacConfig('000001b001'), null, 'MPEG-4 video config: kept')
  t.equal(coreAacConfig('11905'), null, 'odd length: kept')
})

t.test('browserSdp rewrites only mpeg4-generic configs that lose nothing', async t => {
  const capture = readFileSync(new URL('../../../../fixtures/captures/gst-to-gst-rtsp-server.txt', import.meta.url),
    'utf8')
  const fmtp = /a=fmtp:97 [^\\]*/.exec(capture)![0]
  const sdp =
    Buffer.from(`v=0\r\nm=video 0 RTP/AVP 96\r\na=fmtp:96 packetization-mode=1;profile-level-id=4d401e;sprop-parameter-sets=Z01AHtkAoC/5cBEAAAMAAQAAAwAyDxYuSA==,aOvMsg==\r\nm=audio 0 RTP/AVP 97\r\n${fmtp}\r\na=control:trackID=2\r\n`,
      'latin1')
  t.match(sdp.toString(), /config=119056e500/, 'the capture has the 5-byte config')
  const out = browserSdp(sdp).toString('latin1')
  t.match(out, /a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1190;sizelength=13/,
    'config reduced in place, other parameters kept')
  t.equal(out.replace('config=1190;', 'config=119056e500;'), sdp.toString('latin1'), 'nothing else changed')
  const plain = Buffer.from('v=0\r\na=fmtp:97 config=1190\r\n')
  t.equal(browserSdp(plain), plain, 'nothing to change: the same buffer')
})

t.test('browserSdpMessage: a whole SDP response is reduced with its Content-Length; anything else is the same ' +
  'buffer', async t => {
  const sdp = Buffer.from('v=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 ' +
    'streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=119056e500\r' +
    '\na=control:track1\r\n',
  'latin1')
  const res = serializeMessage(makeResponse(200, '3',
    [['Content-Base', 'rtsp://h/live/demo/'], ['Content-Type', 'application/sdp']], sdp))
  const out = browserSdpMessage(res)
  const units = new RtspDemuxer().push(out)
  t.equal(units.length, 1, 'still one message')
  const u = units[0]!
  t.equal(u.kind, 'response')
  if (u.kind !== 'response') return
  t.match(u.body.toString('latin1'), /;config=1190\r\n/, 'config reduced to 1190')
  t.equal(u.body.length, sdp.length - 6, 'body 6 characters shorter')
  t.match(out.toString('latin1'), new RegExp(`\r\nContent-Length: ${sdp.length - 6}\r\n`),
    'Content-Length follows the body')
  t.equal(u.raw.length, out.length, 'nothing after the body')
  t.equal(u.body.toString('latin1').replace('config=1190', 'config=119056e500'), sdp.toString('latin1'),
    'nothing else changed')
  // Left as they are (the same buffer):
  const frame = Buffer.from([0x24, 0, 0, 4, 0x80, 0x60, 0, 1])
  t.equal(browserSdpMessage(frame), frame, 'a $ frame')
  const options = serializeMessage(makeResponse(200, '1', [['Public', 'OPTIONS']]))
  t.equal(browserSdpMessage(options), options, 'a response without a body')
  const text = serializeMessage(makeResponse(200, '4', [['Content-Type', 'text/parameters']],
    Buffer.from('config=119056e500\r\n')))
  t.equal(browserSdpMessage(text), text, 'a body that is not SDP')
  const reduced = serializeMessage(makeResponse(200, '5', [['Content-Type', 'application/sdp']], browserSdp(sdp)))
  t.equal(browserSdpMessage(reduced), reduced, 'an SDP with nothing to reduce')
  const req =
    Buffer.from(`ANNOUNCE rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp.toString('latin1')}`,
      'latin1')
  t.equal(browserSdpMessage(req), req, 'a request (not a response)')
  const two = Buffer.concat([res, frame])
  t.equal(browserSdpMessage(two), two, 'a response followed by other bytes is not touched (whole messages only)')
})

/**
 * parseSdp (src/tunnel/codec/sdp/parse.ts) on the SDPs of the real captures (gst-rtsp-server and
 * live555), on the forms sdp-transform's grammar does not take as written (port counts, runs of
 * spaces, numbers it turns into integers), and on random lines: a parse, never a throw.
 */
import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { parseSdp, sdpVerdict } from '../../../../../src/tunnel/codec/sdp/parse.js'

/** The SDP bodies of a capture transcript (the lines after the head of each application/sdp reply). */
function captureSdps (name: string): string[] {
  const text = readFileSync(new URL(`../../../../fixtures/captures/${name}.txt`, import.meta.url), 'latin1')
  const out: string[] = []
  for (const block of text.split(/\n--- /)) {
    if (!/\nContent-Type: application\/sdp\\r\\n/i.test(block)) continue
    const body = block.split('\n\\r\\n\n')[1] ?? ''
    out.push(body.split('\n').filter(l => l.endsWith('\\r\\n')).map(l => l.slice(0, -4) + '\r\n').join(''))
  }
  return out
}

t.test('the captured SDPs: tracks, controls, clock rates, verdicts', async t => {
  const gst = captureSdps('ffmpeg-to-gst-rtsp-server')
  t.equal(gst.length, 1)
  const g = parseSdp(gst[0]!)
  t.same(g.tracks.map(x => [x.index, x.media, x.payloadType, x.codec, x.clockRate, x.control]),
    [[0, 'video', 96, 'h264', 90000, 'stream=0'], [1, 'audio', 97, 'mpeg4-generic', 48000, 'stream=1']])
  t.equal(g.sessionControl, '*')
  t.equal(g.range, 'now')
  t.equal(sdpVerdict(g), 'live')
  t.match(g.tracks[1]!.fmtp, /^streamtype=5;.*config=119056e500/i)

  const live555 = parseSdp(captureSdps('ffmpeg-to-live555MediaServer')[0]!)
  t.same(live555.tracks.map(x => [x.media, x.codec, x.clockRate, x.control]),
    [['video', 'h264', 90000, 'track1'], ['audio', 'mpeg4-generic', 48000, 'track2']])
  t.equal(live555.range, 'finite', 'a=range:npt=0-60.021')
  t.ok(live555.broadcast, 'live555 writes a=type:broadcast even for a file')
  t.match(live555.tracks[0]!.fmtp, /^packetization-mode=1;profile-level-id=4D401E;sprop-parameter-sets=/)
})

t.test('forms the grammar takes only once normalised', async t => {
  const s = parseSdp('v=0\r\nm=video 0/2 RTP/AVP 96\r\na=rtpmap:96  H264/90000\r\nm=audio  0 RTP/AVP 0\r\n')
  t.same(s.tracks.map(x => [x.media, x.payloadType, x.codec, x.clockRate]),
    [['video', 96, 'h264', 90000], ['audio', 0, 'pcmu', 8000]], 'a port count and runs of spaces')
  t.same(parseSdp('v=0\n  a=control:*  \nm=video 0 RTP/AVP 96\na=control: 1 \n').tracks[0]!.control, '1',
    'LF only, lines trimmed, a numeric control stays text')
  t.equal(parseSdp('v=0\r\na=control:7\r\n').sessionControl, '7')
  t.same(parseSdp('v=0\r\nm=video 0 RTP/AVP\r\n').tracks[0],
    { index: 0, media: 'video', payloadType: -1, codec: '', clockRate: 90000, control: '', fmtp: '' },
    'no payload type: -1, not PCMU')
  t.same(parseSdp('v=0\r\nm=audio 0 RTP/AVP 096\r\na=rtpmap:096 L16/16000\r\na=fmtp:096 x=1\r\n').tracks[0],
    { index: 0, media: 'audio', payloadType: 96, codec: 'l16', clockRate: 16000, control: '', fmtp: 'x=1' },
    'zero-padded payload types match')
  const noRate = parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 opus\r\na=rtpmap: PCMA/8000\r\n').tracks[0]!
  t.same([noRate.codec, noRate.clockRate], ['pcmu', 8000], 'an rtpmap without a rate or a payload type is ignored')
  const media = 'v=0\r\nm=video 0 RTP/AVP 96\r\n'
  t.equal(parseSdp(media + 'a=range:npt=now-\r\n').range, 'none', 'a media-level range is not the session\'s')
  t.ok(parseSdp(media + 'a=type:Broadcast\r\n').broadcast, 'broadcast in a media section, any case')
  t.equal(parseSdp('v=0\r\na=range:smpte=0:00:00-0:01:00\r\n').range, 'finite')
  t.equal(parseSdp('v=0\r\na=range:npt=0-12\r\na=range:clock=x\r\n').range, 'finite',
    'a range it cannot read leaves the last one')
})

t.test('random lines: always a parse, tracks numbered in order', async t => {
  const line = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.tuple(fc.constantFrom('m=', 'a=rtpmap:', 'a=fmtp:', 'a=control:', 'a=range:', 'c=', 'o='),
      fc.string({ maxLength: 30 }))
      .map(([a, b]) => a + b)
  )
  fc.assert(fc.property(fc.array(line, { maxLength: 30 }), fc.constantFrom('\r\n', '\n', '\r'), (lines, eol) => {
    const s = parseSdp(lines.join(eol))
    return s.tracks.every((x, i) =>
      x.index === i && typeof x.control === 'string' && typeof x.codec === 'string' && Number.isFinite(x.clockRate))
  }), { numRuns: 2000 })
  t.pass('2000 random SDPs')
})

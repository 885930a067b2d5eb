import t from 'tap'
import { MediaSource } from '../../../../../src/origin/media-source.js'
import { buildSdp, profileLevelId } from '../../../../../src/tunnel/codec/sdp/write.js'
import { runPeer } from '../../../../helpers/peers.js'

const demo = new URL('../../../../../media/demo.mp4', import.meta.url).pathname

t.test('SDP of the demo file', async (t) => {
  const src = await MediaSource.open(demo)
  t.teardown(() => src.close())
  const sdp = buildSdp({
    name: 'demo',
    origin: '127.0.0.1',
    sessionId: '1',
    durationSec: src.durationSec,
    tracks: src.sdpTracks()
  })
  // Independent truth: extract SPS/PPS with ffmpeg's Annex-B bitstream filter.
  const r = await runPeer('sh',
    ['-c',
      `ffmpeg -v error -i ${demo} -map 0:v -c copy -bsf:v h264_mp4toannexb -frames:v 1 -f h264 - | od -An -v -tx1`],
    { timeoutMs: 20000 })
  t.equal(r.code, 0)
  const bytes = Buffer.from(r.stdout.replace(/\s+/g, ''), 'hex')
  const nals: Buffer[] = []
  let start = -1
  for (let i = 0; i + 3 <= bytes.length; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      if (start >= 0) nals.push(bytes.subarray(start, i > 0 && bytes[i - 1] === 0 ? i - 1 : i))
      start = i + 3
      i += 2
    }
  }
  const sps = nals.find((n) => (n[0]! & 0x1f) === 7)!
  const pps = nals.find((n) => (n[0]! & 0x1f) === 8)!
  t.ok(sps && pps, 'ffmpeg gives SPS and PPS')
  t.match(sdp, `sprop-parameter-sets=${sps.toString('base64')},${pps.toString('base64')}`)
  t.match(sdp, `profile-level-id=${sps.subarray(1, 4).toString('hex')}`)
  t.equal(profileLevelId(sps), '4d401e', 'main profile, level 3.0')
  t.match(sdp, /a=rtpmap:96 H264\/90000\r\n/)
  t.match(sdp, /packetization-mode=1/)
  // AAC: config is the AudioSpecificConfig, checked against ffprobe's extradata.
  const p = await runPeer('ffprobe',
    ['-v', 'error', '-select_streams', 'a', '-show_entries', 'stream=extradata', '-show_data', '-of', 'default=nw=1',
      demo])
  const hex = /00000000: ([0-9a-f ]+)/.exec(p.stdout)?.[1]?.replace(/\s+/g, '').slice(0, 10)
  t.ok(hex, 'ffprobe prints extradata')
  t.match(sdp, `config=${hex}`)
  t.match(sdp, /a=rtpmap:97 mpeg4-generic\/48000\/2\r\n/)
  t.match(sdp, /mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3/)
  t.match(sdp, /a=control:trackID=1\r\n[\s\S]*a=control:trackID=2\r\n/)
  t.match(sdp, /a=range:npt=0-12\.0\d\d\r\n/)
  t.notMatch(sdp, /broadcast/)
})

t.test('live SDP has an open range', async (t) => {
  const sdp = buildSdp({
    name: 'x',
    origin: '0.0.0.0',
    sessionId: '1',
    tracks: [{
      kind: 'audio',
      payloadType: 97,
      control: 'trackID=1',
      sampleRate: 48000,
      channels: 2,
      asc: Buffer.from('1190', 'hex')
    }]
  })
  t.match(sdp, /a=range:npt=now-\r\na=type:broadcast\r\n/)
  t.match(sdp, /config=1190/)
  t.ok(sdp.startsWith('v=0\r\n'))
})

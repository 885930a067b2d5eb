/**
 * browserSdp (src/tunnel/codec/sdp-browser.ts): the 5-byte AAC config FFmpeg-made media carries
 * (core + explicit "no SBR" extension, as in the reference captures of live555 and gst-rtsp-server)
 * becomes its 2-byte core for media-stream-library; every other config and line is left alone.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { browserSdp, coreAacConfig } from '../../../src/tunnel/codec/sdp-browser.js'

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
  const capture = readFileSync(new URL('../../fixtures/captures/gst-to-gst-rtsp-server.txt', import.meta.url), 'utf8')
  const fmtp = /a=fmtp:97 [^\\]*/.exec(capture)![0]
  const sdp = Buffer.from(`v=0\r\nm=video 0 RTP/AVP 96\r\na=fmtp:96 packetization-mode=1;profile-level-id=4d401e;sprop-parameter-sets=Z01AHtkAoC/5cBEAAAMAAQAAAwAyDxYuSA==,aOvMsg==\r\nm=audio 0 RTP/AVP 97\r\n${fmtp}\r\na=control:trackID=2\r\n`, 'latin1')
  t.match(sdp.toString(), /config=119056e500/, 'the capture has the 5-byte config')
  const out = browserSdp(sdp).toString('latin1')
  t.match(out, /a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1190;sizelength=13/, 'config reduced in place, other parameters kept')
  t.equal(out.replace('config=1190;', 'config=119056e500;'), sdp.toString('latin1'), 'nothing else changed')
  const plain = Buffer.from('v=0\r\na=fmtp:97 config=1190\r\n')
  t.equal(browserSdp(plain), plain, 'nothing to change: the same buffer')
})

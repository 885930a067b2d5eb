/**
 * Interop: a backend that offers RTP over TCP only (gst-rtsp-server via gst-origin --protocols tcp,
 * as a server behind its own firewall would be set up) works through the tunnel: the relay always
 * asks its backends for interleaved RTP on the RTSP connection, whatever the client asked for.
 *  - the backend really refuses UDP: ffprobe straight to it with -rtsp_transport udp fails (461);
 *  - ffprobe -rtsp_transport http through the gateway lists h264 + aac, and nothing is left over;
 *  - ffmpeg decodes 5 s of /vod through the gateway in real time.
 */
import t from 'tap'
import { checkFfmpegDecode, checkFfprobe, gstBackendBed } from '../helpers/interop-checks.js'
import { runPeer } from '../helpers/peers.js'

const { target, gst } = gstBackendBed('tcp-only', { protocols: 'tcp' })

t.test('the backend refuses RTP over UDP', async t => {
  const r = await runPeer('ffprobe',
    ['-v', 'error', '-rtsp_transport', 'udp', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0',
      `${gst().url}/vod`],
    { timeoutMs: 20000 })
  t.not(r.code, 0, 'ffprobe over UDP straight to the backend fails')
  t.match(r.stderr, /461|Unsupported transport/, 'with 461 Unsupported transport')
})
t.test('ffprobe lists h264 + aac for /vod through the tunnel', tt => checkFfprobe(tt, target(), '/vod'))
t.test('ffmpeg decodes 5 s of /vod through the tunnel', tt => checkFfmpegDecode(tt, target(), '/vod', { vod: true }))

/**
 * Interop: GStreamer (playbin with rtspsrc over rtsph://, driven by test/peers/gst-player.py) plays,
 * pauses, resumes, seeks on a VOD file and tears down through the gateway, against both backends:
 * GStreamer's RTSP server (/vod) and the embedded origin (/demo). Afterwards nothing is left open.
 */
import t from 'tap'
import pino from 'pino'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { startTestGateway } from '../helpers/gateway-harness.js'
import { checkGstControls, gstBackendBed } from '../helpers/interop-checks.js'

const onGst = gstBackendBed('gstctl')
let origin: Awaited<ReturnType<typeof startOrigin>> | undefined
let gwOrigin: Gateway | undefined

t.before(async () => {
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) })
  gwOrigin = await startTestGateway(t, [`rtsp://127.0.0.1:${origin.port}`])
})

t.teardown(async () => {
  await origin?.close()
})

t.test('GStreamer controls through the tunnel to gst-rtsp-server /vod',
  tt => checkGstControls(tt, onGst.target(), '/vod', 8))
t.test('GStreamer controls through the tunnel to the embedded origin /demo',
  tt => checkGstControls(tt, { gw: gwOrigin!, backendPorts: [origin!.port] }, '/demo', 6))
